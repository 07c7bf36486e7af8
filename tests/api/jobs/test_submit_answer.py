"""A submission whose commit succeeded is answered 202 from what was committed: nothing is read after the
commit, so no read (a busy pool, a lost connection) can turn an accepted job into an error."""
from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event

from core.db import get_engine, session_scope
from core.keys import create_key
from core.orm import Role
from core.settings import Settings
from tests.utils.clients import bearer
from tests.utils.databases import fresh_database
from tests.utils.jobs import TINY_LINEAR

pytestmark = pytest.mark.service  # a real Redis takes the job id


def test_nothing_is_read_after_a_submission_commits(tmp_path, redis_url):
    from api.main import create_app
    from ml.data.registry import use_uploaded_datasets

    with fresh_database(tmp_path) as url:
        with session_scope(url) as session:
            key = create_key(session, owner="alice", role=Role.user)[1]
        engine = get_engine(url)
        seen: list[str] = []
        on_statement = lambda _c, _cur, statement, *_a: seen.append(statement.split()[0].upper())  # noqa: E731
        on_commit = lambda _conn: seen.append("COMMIT")  # noqa: E731
        try:
            # its own Redis database: no test's worker trains this job
            settings = Settings(database_url=url, redis_url=redis_url.rsplit("/", 1)[0] + "/8")
            with TestClient(create_app(settings)) as client:
                client.headers.update(bearer(key))
                client.get("/v1/me")  # the key verified and remembered
                event.listen(engine, "before_cursor_execute", on_statement)
                event.listen(engine, "commit", on_commit)
                response = client.post("/v1/jobs", json=TINY_LINEAR)
                event.remove(engine, "before_cursor_execute", on_statement)
                event.remove(engine, "commit", on_commit)
        finally:
            use_uploaded_datasets(None)
            engine.dispose()
    assert response.status_code == 202, response.text
    assert response.json()["status"] == "queued" and response.headers["Location"].endswith(response.json()["id"])
    assert "INSERT" in seen and seen.index("COMMIT") > seen.index("INSERT")
    assert seen[seen.index("COMMIT") + 1:] == [], f"read after the commit: {seen}"
