"""Overload and a full database disk, for real. A request past MAX_REQUESTS_IN_FLIGHT waits, then gets a JSON
503; SQLite on a small tmpfs filled to the last byte: writes answer a JSON 503 with Retry-After (never a plain
500), reads keep working, /readyz says not ready; freeing space heals it."""
from __future__ import annotations

import os
import subprocess
import tempfile
from pathlib import Path

import pytest

from core.db import session_scope
from core.keys import create_key
from core.migrate import upgrade
from core.orm import Role
from tests.utils.clients import api_client
from tests.utils.jobs import TINY_LINEAR
from tests.utils.stack import serve_api, stop_group

pytestmark = pytest.mark.service


@pytest.fixture
def small_disk(tmp_path) -> Path:
    """A 2 MiB tmpfs (needs root; skipped where mounting is not allowed)."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)],
                                           capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=False)


def _fill(disk: Path) -> Path:
    """Write a file until the disk has no byte left; returns it."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        for block in (65536, 512, 1):  # big blocks, then the last bytes
            try:
                while True:
                    os.write(fd, b"\0" * block)
            except OSError:
                pass
    finally:
        os.close(fd)
    return filler


def test_a_full_database_disk_is_a_json_503_and_not_ready(small_disk, service_env, tmp_path):
    url = f"sqlite:///{small_disk / 'trainserve.db'}"
    upgrade(url)
    with session_scope(url) as session:
        key = create_key(session, owner="ops", role=Role.admin)[1]
    env = {**service_env, "DATABASE_URL": url, "VAR_DIR": str(tmp_path / "var")}
    api, base = serve_api(env, tmp_path / "api.log")
    try:
        with api_client(base, key, timeout=60) as client:
            assert client.post("/v1/jobs", json=TINY_LINEAR).status_code == 202  # room to write, before
            filler = _fill(small_disk)
            answers = [client.post("/v1/jobs", json=TINY_LINEAR) for _ in range(5)]
            answers.append(client.post("/v1/keys", json={"owner": "dora", "role": "user"}))
            for answer in answers:
                assert answer.status_code == 503, answer.text
                assert answer.headers["content-type"] == "application/json"
                assert "disk is full" in answer.json()["detail"] and answer.headers["Retry-After"] == "60"
            assert client.get("/v1/jobs").json()["count"] == 1  # reads still work
            ready = client.get("/readyz")
            assert ready.status_code == 503 and ready.json()["database"].startswith("disk full"), ready.text

            filler.unlink()  # an operator frees space: ready again, and writes work
            ready = client.get("/readyz")
            assert ready.json()["database"] == "ok", ready.text
            assert client.post("/v1/jobs", json=TINY_LINEAR).status_code == 202
    finally:
        stop_group(api)
    assert "Traceback" not in (tmp_path / "api.log").read_text()


def test_requests_past_the_in_flight_bound_wait_then_get_a_json_503(service_env, tmp_path):
    """MAX_REQUESTS_IN_FLIGHT=1: while a slow upload holds the one slot, another request waits
    REQUEST_QUEUE_TIMEOUT_S at the door, then gets a JSON 503 with Retry-After; once the slot is free,
    it is served. Liveness is never queued."""
    import threading
    import time

    url = f"sqlite:///{tmp_path / 'busy.db'}"
    upgrade(url)
    with session_scope(url) as session:
        key = create_key(session, owner="ops", role=Role.admin)[1]
    env = {**service_env, "DATABASE_URL": url, "VAR_DIR": str(tmp_path / "var"), "MAX_REQUESTS_IN_FLIGHT": "1",
           "REQUEST_QUEUE_TIMEOUT_S": "0.5"}
    api, base = serve_api(env, tmp_path / "api.log")
    release = threading.Event()

    def slow_body():
        yield b"--x\r\nContent-Disposition: form-data; name=\"name\"\r\n\r\nslow\r\n"
        release.wait(30)  # the request stays inside the app, holding the one slot, until the test lets go
        yield b"--x--\r\n"

    def upload():
        with api_client(base, key, timeout=60) as uploader:
            uploader.post("/v1/datasets", content=slow_body(),
                          headers={"Content-Type": "multipart/form-data; boundary=x"})

    try:
        with api_client(base, key, timeout=60) as client:
            holder = threading.Thread(target=upload)
            holder.start()
            time.sleep(1.0)  # the upload is in
            started = time.monotonic()
            busy = client.get("/v1/jobs")
            assert busy.status_code == 503 and busy.headers["content-type"] == "application/json", busy.text
            assert "busy" in busy.json()["detail"] and int(busy.headers["Retry-After"]) >= 1
            assert time.monotonic() - started >= 0.5
            assert client.get("/healthz").status_code == 200
            release.set()
            holder.join(30)
            assert client.get("/v1/jobs").status_code == 200
    finally:
        release.set()
        stop_group(api)


@pytest.fixture
def full_postgresql():
    """A fresh database on TEST_DATABASE_URL's server whose tablespace is a small tmpfs (needs root and the
    server on this machine; skipped otherwise), and a way to fill it: yields (url, fill)."""
    import uuid

    from sqlalchemy import text
    from sqlalchemy.engine import make_url

    from core.db import make_engine

    server_url = os.environ.get("TEST_DATABASE_URL", "")
    if not server_url.startswith("postgresql") or make_url(server_url).host not in ("127.0.0.1", "localhost"):
        pytest.skip("needs TEST_DATABASE_URL on a PostgreSQL server on this machine")
    disk = Path(tempfile.mkdtemp(prefix="trainserve-pgdisk-"))  # outside pytest's private (0700) folders
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)],
                                           capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    subprocess.run(["chown", "postgres", str(disk)], check=False)  # the server's user writes there
    name = f"trainserve_full_{uuid.uuid4().hex[:8]}"
    admin = make_engine(server_url).execution_options(isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(text(f"CREATE TABLESPACE {name} LOCATION '{disk}'"))
            conn.execute(text(f'CREATE DATABASE "{name}" TABLESPACE {name}'))
        url = make_url(server_url).set(database=name).render_as_string(hide_password=False)
        upgrade(url)

        def fill() -> None:
            engine = make_engine(url)
            with engine.connect() as conn:
                conn.execute(text("CREATE TABLE filler (x text)"))
                conn.commit()
                try:
                    while True:
                        conn.execute(text("INSERT INTO filler SELECT repeat(md5(random()::text), 200) "
                                          "FROM generate_series(1, 100)"))
                        conn.commit()
                except Exception:  # DiskFull: the tablespace has no block left
                    conn.rollback()
            engine.dispose()

        yield url, fill
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
            conn.execute(text(f"DROP TABLESPACE IF EXISTS {name}"))
        admin.dispose()
        subprocess.run(["umount", "-l", str(disk)], check=False)
        disk.rmdir()


def test_a_full_postgresql_tablespace_is_a_json_503_and_not_ready(full_postgresql, service_env, tmp_path):
    url, fill = full_postgresql
    with session_scope(url) as session:
        key = create_key(session, owner="ops", role=Role.admin)[1]
    api, base = serve_api({**service_env, "DATABASE_URL": url, "VAR_DIR": str(tmp_path / "var")}, tmp_path / "api.log")
    try:
        with api_client(base, key, timeout=60) as client:
            assert client.post("/v1/jobs", json=TINY_LINEAR).status_code == 202
            fill()
            accepted = 0  # rows still fit in the table's last page until it needs a new block
            while (answer := client.post("/v1/jobs", json=TINY_LINEAR)).status_code == 202 and accepted < 200:
                accepted += 1
            assert answer.status_code == 503 and answer.headers["content-type"] == "application/json", answer.text
            assert "disk is full" in answer.json()["detail"] and answer.headers["Retry-After"] == "60"
            assert client.get("/v1/jobs").json()["count"] == 1 + accepted  # reads still work
            ready = client.get("/readyz")
            assert ready.status_code == 503 and ready.json()["database"].startswith("disk full"), ready.text
    finally:
        stop_group(api)
