"""shared job counter, leadership fencing, stop outbox, replica requests, retry counts

Revision ID: 0003
Revises: 0001 (the lead re-points this to 0002 at merge)
"""

from alembic import op
import sqlalchemy as sa


revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    with op.batch_alter_table("jobs") as batch:
        batch.add_column(sa.Column("lost_runs", sa.Integer(), nullable=False, server_default="0"))
        batch.add_column(
            sa.Column("refused_starts", sa.Integer(), nullable=False, server_default="0")
        )
        batch.add_column(sa.Column("not_before", sa.DateTime(timezone=True), nullable=True))
    counters = op.create_table(
        "counters",
        sa.Column("name", sa.String(length=32), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    leadership = op.create_table(
        "leadership",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("epoch", sa.Integer(), nullable=False),
        sa.Column("holder", sa.String(length=256), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_table(
        "run_stops",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("job_id", sa.String(length=40), nullable=False),
        sa.Column("site", sa.String(length=128), nullable=False),
        sa.Column("handle", sa.JSON(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_run_stops_job_id", "run_stops", ["job_id"])
    op.create_table(
        "control_requests",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("target", sa.String(length=256), nullable=False),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("args", sa.JSON(), nullable=True),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("result", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    highest = op.get_bind().execute(sa.text("SELECT COALESCE(MAX(seq), 0) FROM jobs")).scalar()
    op.bulk_insert(counters, [{"name": "job_seq", "value": int(highest or 0)}])
    op.bulk_insert(leadership, [{"id": 1, "epoch": 0, "holder": "", "since": None}])


def downgrade() -> None:
    op.drop_table("control_requests")
    op.drop_index("ix_run_stops_job_id", table_name="run_stops")
    op.drop_table("run_stops")
    op.drop_table("leadership")
    op.drop_table("counters")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_column("not_before")
        batch.drop_column("refused_starts")
        batch.drop_column("lost_runs")
