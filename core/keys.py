"""API keys: create (the key is shown once), authenticate by its hash, list, revoke.

`python -m core.keys create alice --role user` works without a running server (bootstrap, recovery);
`trainserve keys ...` does the same through the admin routes.
"""
from __future__ import annotations

import argparse
import hashlib
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from core.errors import KeyNotFound
from core.orm import ApiKey, Role, utcnow

KEY_PREFIX = "ts_"


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key's owner and role (the route's view of an authenticated request)."""

    owner: str
    role: Role
    key_id: int | None = None

    @property
    def is_admin(self) -> bool:
        return self.role is Role.admin

    @property
    def owner_filter(self) -> str | None:
        """The owner to filter lists by: None (everything) for admins."""
        return None if self.is_admin else self.owner


def hash_key(key: str) -> str:
    """SHA-256 hex of a key: the only form the database holds."""
    return hashlib.sha256(key.encode()).hexdigest()


def create_key(session: Session, *, owner: str, role: Role) -> tuple[ApiKey, str]:
    """A new key for `owner`; returns the row and the key itself, which is never stored (commits)."""
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    row = ApiKey(owner=owner, role=role, key_hash=hash_key(key), prefix=key[:10], created_at=utcnow())
    session.add(row)
    session.commit()
    return row, key


def authenticate(session: Session, key: str) -> Principal | None:
    """The principal of a live key; None for an unknown or revoked one."""
    row = session.scalars(select(ApiKey).where(ApiKey.key_hash == hash_key(key))).first()
    if row is None or row.revoked_at is not None:
        return None
    return Principal(owner=row.owner, role=row.role, key_id=row.id)


class KeyCache:
    """Verified keys by hash, each remembered `ttl_s` seconds, at most `max_keys` (the oldest go first).

    A request with a remembered key needs no SQL. A key revoked by another process is refused here within
    `ttl_s`; revoking through this process drops its entry at once (`forget`). Only live keys are kept:
    an unknown or revoked key is looked up every time. Thread-safe.
    """

    def __init__(self, ttl_s: float, max_keys: int):
        self.ttl_s, self.max_keys = ttl_s, max_keys
        self._entries: OrderedDict[str, tuple[float, Principal]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: str) -> Principal | None:
        """The remembered principal of `key`, if verified less than `ttl_s` ago."""
        digest = hash_key(key)
        with self._lock:
            entry = self._entries.get(digest)
            if entry is None:
                return None
            if time.monotonic() >= entry[0]:
                del self._entries[digest]
                return None
            return entry[1]

    def put(self, key: str, principal: Principal) -> None:
        """Remember a key the database just verified."""
        if self.ttl_s <= 0:
            return
        digest = hash_key(key)
        with self._lock:
            self._entries[digest] = (time.monotonic() + self.ttl_s, principal)
            self._entries.move_to_end(digest)
            while len(self._entries) > self.max_keys:
                self._entries.popitem(last=False)

    def forget(self, key_hash: str) -> None:
        """Drop a key by its stored hash (it was just revoked)."""
        with self._lock:
            self._entries.pop(key_hash, None)


def owner_is_admin(session: Session, owner: str | None) -> bool:
    """Whether `owner` holds a live admin key (None: a row made before keys existed, which only admins saw)."""
    if owner is None:
        return True
    return session.scalar(select(ApiKey.id).where(ApiKey.owner == owner, ApiKey.role == Role.admin,
                                                  ApiKey.revoked_at.is_(None)).limit(1)) is not None


def list_keys(session: Session) -> Sequence[ApiKey]:
    """Every key, revoked ones too, oldest first."""
    return session.scalars(select(ApiKey).order_by(ApiKey.id)).all()


def revoke_key(session: Session, *, key_id: int) -> ApiKey:
    """Revoke a key at once (commits); revoking twice keeps the first time."""
    row = session.get(ApiKey, key_id)
    if row is None:
        raise KeyNotFound(key_id)
    if row.revoked_at is None:
        row.revoked_at = utcnow()
        session.commit()
    return row


def has_admin_key(session: Session) -> bool:
    """Whether any live admin key exists (the first `make run` makes one when none does)."""
    query = select(ApiKey.id).where(ApiKey.role == Role.admin, ApiKey.revoked_at.is_(None)).limit(1)
    return session.scalars(query).first() is not None


def main(argv: Sequence[str] | None = None) -> None:
    """`python -m core.keys create|list|revoke` on the configured database."""
    from core.db import get_sessionmaker

    parser = argparse.ArgumentParser(prog="python -m core.keys", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    create = sub.add_parser("create", help="make a key and print it (once)")
    create.add_argument("owner")
    create.add_argument("--role", choices=list(Role), default=Role.user)
    sub.add_parser("list", help="every key (never the key itself)")
    revoke = sub.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id", type=int)
    args = parser.parse_args(argv)
    with get_sessionmaker()() as session:
        if args.command == "create":
            row, key = create_key(session, owner=args.owner, role=Role(args.role))
            print(f"key {row.id} for {row.owner} ({row.role}): {key}")
        elif args.command == "list":
            for row in list_keys(session):
                state = f"revoked {row.revoked_at:%Y-%m-%d %H:%M}" if row.revoked_at else "live"
                print(f"{row.id}\t{row.prefix}…\t{row.owner}\t{row.role}\t{state}")
        else:
            row = revoke_key(session, key_id=args.key_id)
            print(f"key {row.id} of {row.owner} revoked")


if __name__ == "__main__":
    main()
