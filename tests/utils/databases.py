"""A fresh database at Alembic head: SQLite in a folder, or a new database on TEST_DATABASE_URL's server."""
from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url

from core.db import make_engine
from core.migrate import upgrade


@contextmanager
def fresh_database(folder: Path) -> Iterator[str]:
    """The URL of a new, migrated database (dropped at the end on PostgreSQL)."""
    server_url = os.environ.get("TEST_DATABASE_URL")
    if not server_url:
        url = f"sqlite:///{folder / 'trainserve.db'}"
        upgrade(url)
        yield url
        return
    name = f"trainserve_test_{uuid.uuid4().hex[:10]}"
    admin = make_engine(server_url).execution_options(isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
    try:
        upgrade(url)
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()
