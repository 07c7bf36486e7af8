"""`python -m core.keys` makes, lists and revokes keys on the configured database without a server."""
from __future__ import annotations

import os
import subprocess
import sys

from core.db import session_scope
from core.keys import authenticate, hash_key
from core.migrate import upgrade
from core.settings import PROJECT_ROOT


def _keys(url: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "core.keys", *args], cwd=PROJECT_ROOT, capture_output=True,
                          text=True, env={**os.environ, "DATABASE_URL": url}, timeout=60)


def test_create_list_revoke_without_a_server(tmp_path):
    url = f"sqlite:///{tmp_path / 'keys.db'}"
    upgrade(url)
    made = _keys(url, "create", "ops", "--role", "admin")
    assert made.returncode == 0, made.stderr
    key = made.stdout.split()[-1]
    with session_scope(url) as session:
        assert authenticate(session, key).is_admin
    listed = _keys(url, "list").stdout
    assert "ops" in listed and "admin" in listed and key not in listed and hash_key(key) not in listed
    assert _keys(url, "revoke", "1").returncode == 0
    with session_scope(url) as session:
        assert authenticate(session, key) is None


def test_auth_off_is_refused_when_the_api_binds_beyond_loopback():
    import pytest
    from pydantic import ValidationError

    from core.settings import Settings

    assert Settings(auth="off", host="127.0.0.1").auth == "off"
    with pytest.raises(ValidationError, match="AUTH=off is refused"):
        Settings(auth="off", host="0.0.0.0")


def test_auth_off_on_loopback_serves_everyone_as_the_local_admin(tmp_path):
    from fastapi.testclient import TestClient

    from api.main import create_app
    from core.settings import Settings

    from ml.data.registry import use_uploaded_datasets

    app = create_app(Settings(auth="off", host="127.0.0.1", database_url=f"sqlite:///{tmp_path / 'off.db'}"))
    try:
        with TestClient(app) as local:
            assert local.get("/v1/me").json() == {"owner": "local", "role": "admin"}
    finally:
        use_uploaded_datasets(None)  # create_app installs the DB lookup process-wide; later engine tests have no DB


def test_the_key_cache_forgets_after_its_ttl_and_keeps_at_most_max_keys():
    import time

    from core.keys import KeyCache, Principal
    from core.orm import Role

    alice, bob = Principal("alice", Role.user, 1), Principal("bob", Role.user, 2)
    cache = KeyCache(ttl_s=0.2, max_keys=1)
    cache.put("ts_a", alice)
    assert cache.get("ts_a") == alice and cache.get("ts_b") is None
    cache.put("ts_b", bob)  # over max_keys: the oldest goes
    assert cache.get("ts_a") is None and cache.get("ts_b") == bob
    cache.forget(hash_key("ts_b"))  # revoked through this process: gone at once
    assert cache.get("ts_b") is None
    cache.put("ts_a", alice)
    time.sleep(0.25)
    assert cache.get("ts_a") is None  # past the TTL: looked up again
    off = KeyCache(ttl_s=0, max_keys=10)
    off.put("ts_a", alice)
    assert off.get("ts_a") is None
