"""Counting what reaches the database: the SQL statements a call sends, seen on the engine."""
from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import event
from sqlalchemy.engine import Engine

T = TypeVar("T")


def statements(engine: Engine, call: Callable[[], T]) -> tuple[T, list[str]]:
    """`call()`'s result and every SQL statement the engine sent while it ran, in order."""
    seen: list[str] = []

    def count(_conn, _cursor, statement, *_args):
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        return call(), seen
    finally:
        event.remove(engine, "before_cursor_execute", count)
