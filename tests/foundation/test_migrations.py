"""The one set of migrations builds the same schema on SQLite and PostgreSQL, matching the models."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Engine, inspect
from sqlmodel import SQLModel

from huifang.db import create_db_engine, downgrade, upgrade


def test_migrated_schema_has_every_table_of_the_domain(engine: Engine) -> None:
    tables = set(inspect(engine).get_table_names())
    assert set(SQLModel.metadata.tables) <= tables


def test_migrations_match_the_models_exactly(engine: Engine) -> None:
    with engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), SQLModel.metadata)
    assert diff == []


def test_downgrade_to_base_then_upgrade_again(engine: Engine) -> None:
    downgrade(engine, "base")
    assert "incidents" not in inspect(engine).get_table_names()
    upgrade(engine)
    assert "incidents" in inspect(engine).get_table_names()


def test_upgrade_twice_is_harmless(tmp_path) -> None:  # type: ignore[no-untyped-def]
    engine = create_db_engine(f"sqlite:///{tmp_path / 'twice.db'}")
    upgrade(engine)
    upgrade(engine)
    assert "call_attempts" in inspect(engine).get_table_names()
    engine.dispose()
