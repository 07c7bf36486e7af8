"""Job and sweep ids given by their first characters (`2c60f708` for `2c60f708-f39c-…`), as git takes commits."""
from __future__ import annotations

import re

from sqlalchemy import select
from sqlalchemy.orm import InstrumentedAttribute, Session

from core.errors import AmbiguousId

MIN_PREFIX = 8  # one in 4 billion that two random ids share it
MAX_LISTED = 5  # an ambiguous prefix's 409 names at most this many ids
_PREFIX = re.compile(r"[0-9a-f-]{%d,35}" % MIN_PREFIX)  # ids are lower-case uuid4 strings (36 characters)


def as_prefix(given: str) -> str | None:
    """`given` as an id prefix (lower-cased), or None when it cannot be one (too short, not hex, a full id)."""
    lowered = given.lower()
    return lowered if _PREFIX.fullmatch(lowered) else None


def ids_starting_with(session: Session, column: InstrumentedAttribute, prefix: str, *, kind: str,
                      where=()) -> str | None:
    """The one id in `column` that starts with `prefix` (None: none does); AmbiguousId when several do."""
    # the range reads the primary key's index on SQLite and PostgreSQL alike (SQLite's LIKE is
    # case-insensitive, so it would scan); the LIKE keeps it exact whatever the collation; at most
    # MAX_LISTED + 1 rows come back however many match
    upper = prefix[:-1] + chr(ord(prefix[-1]) + 1)
    query = (select(column).where(column >= prefix, column < upper, column.like(prefix + "%"), *where)
             .order_by(column).limit(MAX_LISTED + 1))
    found = list(session.scalars(query))
    if len(found) > 1:
        raise AmbiguousId(kind, prefix, found[:MAX_LISTED], more=len(found) > MAX_LISTED)
    return found[0] if found else None
