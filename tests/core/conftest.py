"""The core services' tests drive jobs and sweeps with stand-in workers and dispatchers, so they get a
database of their own. On the session's shared database the live service would take those jobs for its
own: its maintenance re-sends queued jobs the broker does not hold and requeues running ones whose
worker never beats, and the session's worker would then train them (full-MNIST MLPs, ahead of every
fresh job) while later tests waited behind them.
"""
from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy.engine import Engine

from core.db import make_engine
from tests.utils.databases import fresh_database


@pytest.fixture(scope="session")
def db_engine(tmp_path_factory) -> Iterator[Engine]:
    """An engine on a migrated database that no service process reads (overrides the shared one here)."""
    with fresh_database(tmp_path_factory.mktemp("core-db")) as url:
        engine = make_engine(url)
        yield engine
        engine.dispose()
