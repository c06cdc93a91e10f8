"""indexes for the job list's filters (squeue/sacct/scancel by name and by user)

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    # Every list is one programme's (or, for an admin, narrowed by it): the programme
    # leads, so a name or user filter reads only that programme's matching rows.
    op.create_index("ix_jobs_tenant_name", "jobs", ["tenant", "name"])
    op.create_index("ix_jobs_tenant_user", "jobs", ["tenant", "user_id"])


def downgrade() -> None:
    op.drop_index("ix_jobs_tenant_user", table_name="jobs")
    op.drop_index("ix_jobs_tenant_name", table_name="jobs")
