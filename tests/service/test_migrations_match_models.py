"""The migrations build exactly the schema the models declare (one owner per fact: a
model change without its migration, or the reverse, fails here)."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import create_engine

from arkwright.service.db import Base, migrate


def test_a_migrated_database_has_the_models_schema(db_url):
    engine = create_engine(db_url)
    migrate(engine)
    with engine.connect() as connection:
        differences = compare_metadata(MigrationContext.configure(connection), Base.metadata)
    engine.dispose()
    assert differences == []
