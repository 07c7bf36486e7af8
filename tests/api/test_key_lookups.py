"""Requests that miss the key cache together share one SQL lookup (api/auth.py KeyLookups)."""
from __future__ import annotations

import asyncio

from sqlalchemy import event

from api.auth import KeyLookups
from core.db import get_engine


def test_concurrent_misses_of_one_key_cost_one_sql_lookup(database_url, make_key):
    alice, bob = make_key("lookup-alice"), make_key("lookup-bob")
    seen: list[str] = []

    def count(_conn, _cursor, statement, *_args):
        seen.append(statement)

    async def ask() -> list:
        lookups = KeyLookups()
        asked = [alice] * 32 + [bob] * 8 + ["ts_unknown"] * 4
        return list(await asyncio.gather(*(lookups.look_up(key, database_url) for key in asked)))

    engine = get_engine(database_url)
    event.listen(engine, "before_cursor_execute", count)
    try:
        principals = asyncio.run(ask())
    finally:
        event.remove(engine, "before_cursor_execute", count)
    assert {p.owner for p in principals[:32]} == {"lookup-alice"} and {p.owner for p in principals[32:40]} == {"lookup-bob"}
    assert principals[40:] == [None] * 4  # an unknown key is refused, and not remembered (looked up again next time)
    assert len([s for s in seen if "api_keys" in s]) == 3, seen  # one per distinct key, not one per request
