"""Alembic makes the schema: it matches the ORM, goes down and up again, and SQLite is set up right."""
from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import inspect, text

import core.orm  # noqa: F401
from core.db import make_engine
from core.migrate import downgrade, upgrade
from core.orm.base import Base

pytestmark = pytest.mark.service


def test_migrated_schema_matches_the_models(db_engine):
    with db_engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    # types may be reported differently across dialects; missing tables/columns/constraints may not
    structural = [d for d in diff if not (isinstance(d, list) and d and d[0][0] == "modify_type")]
    assert structural == []


def test_downgrade_and_upgrade_round_trip(tmp_path):
    url = f"sqlite:///{tmp_path / 'round.db'}"
    upgrade(url)
    engine = make_engine(url)
    assert {"jobs", "epoch_metrics", "checkpoints"} <= set(inspect(engine).get_table_names())
    downgrade(url, "base")
    assert {"jobs", "epoch_metrics", "checkpoints"}.isdisjoint(inspect(engine).get_table_names())
    upgrade(url)
    assert "jobs" in inspect(engine).get_table_names()
    engine.dispose()


def test_sqlite_connections_use_wal_and_foreign_keys(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'p.db'}")
    with engine.connect() as conn:
        assert conn.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert conn.execute(text("PRAGMA foreign_keys")).scalar() == 1
    engine.dispose()


def test_foreign_keys_are_enforced(db_engine):
    with db_engine.connect() as conn, pytest.raises(Exception, match="(?i)foreign key"):
        conn.execute(text(
            "INSERT INTO epoch_metrics (job_id, epoch, train_loss, lr, seconds, samples_per_second, created_at) "
            "VALUES ('no-such-job', 1, 1.0, 0.1, 1.0, 1.0, CURRENT_TIMESTAMP)"))
        conn.commit()
