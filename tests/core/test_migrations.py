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


def test_checkpoint_paths_become_store_keys(tmp_path):
    """0008: host paths written before the artifact store become keys relative to it, and back on downgrade."""
    from sqlalchemy.orm import Session

    from core.orm import Checkpoint, Job, JobAttempt

    url = f"sqlite:///{tmp_path / 'keys.db'}"
    upgrade(url, "0007_auth")
    engine = make_engine(url)
    old = "/srv/var/artifacts/jobs/j1/epoch-002.pt"
    with Session(engine) as session:
        session.add(Job(id="j1", model="mlp", dataset="mnist", config={}, seed=1,
                        result={"best_checkpoint": old, "seconds": 1.5}))
        session.add(Checkpoint(job_id="j1", epoch=2, path=old, sha256="0" * 64, size_bytes=1, metrics={}, is_best=True))
        session.add(JobAttempt(job_id="j1", number=1, worker="w",
                               stop_checkpoint="/srv/var/artifacts/jobs/j1/stopped-epoch-003.pt"))
        session.commit()
    upgrade(url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT path FROM checkpoints")).scalar() == "jobs/j1/epoch-002.pt"
        assert conn.execute(text("SELECT stop_checkpoint FROM job_attempts")).scalar() == "jobs/j1/stopped-epoch-003.pt"
        assert '"best_checkpoint": "jobs/j1/epoch-002.pt"' in conn.execute(text("SELECT result FROM jobs")).scalar()
    downgrade(url, "0007_auth")
    with engine.connect() as conn:
        assert conn.execute(text("SELECT path FROM checkpoints")).scalar().endswith("/artifacts/jobs/j1/epoch-002.pt")
    engine.dispose()
