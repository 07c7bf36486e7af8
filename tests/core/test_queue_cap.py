"""The per-owner queued-jobs cap is atomic: two submits that count at the same moment cannot both get in.

Real sessions on the suite's database (SQLite, or PostgreSQL with TEST_DATABASE_URL) in two threads; a
cursor hook holds each one right after it counted, until the other has counted too (or 3 s passed), so
without a lock both see room and both insert.
"""
from __future__ import annotations

import threading
import uuid

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.orm import sessionmaker

from core import jobs
from core.errors import TooManyQueued
from core.orm import Job

pytestmark = pytest.mark.service

CONFIG = {"model": "mlp", "dataset": "mnist", "hyperparameters": {"epochs": 1}}


class _Sent:
    def enqueue(self, job_id: str, *, ahead: bool = False) -> None:
        """Nothing consumes these jobs."""


def test_two_submits_counting_at_once_admit_only_what_the_cap_allows(db_engine):
    owner = f"racer-{uuid.uuid4().hex[:6]}"
    both_counted = threading.Barrier(2, timeout=3)
    racing = {}

    def hold_after_count(_conn, _cursor, statement, *_args):
        if threading.current_thread().name in racing and "count(" in statement.lower():
            try:
                both_counted.wait()
            except threading.BrokenBarrierError:  # the other could not count meanwhile: it is locked out
                pass

    def submit() -> None:
        with sessionmaker(bind=db_engine)() as session:
            try:
                jobs.submit(session, config=CONFIG, dispatcher=_Sent(), owner=owner, max_queued=1)
                racing[threading.current_thread().name] = "queued"
            except TooManyQueued:
                racing[threading.current_thread().name] = "refused"

    threads = [threading.Thread(target=submit, name=f"submit-{i}") for i in range(2)]
    racing.update({t.name: None for t in threads})
    event.listen(db_engine, "after_cursor_execute", hold_after_count)
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=60)
    finally:
        event.remove(db_engine, "after_cursor_execute", hold_after_count)
    assert sorted(racing.values()) == ["queued", "refused"]
    with sessionmaker(bind=db_engine)() as session:
        assert session.scalar(select(func.count()).select_from(Job).where(Job.owner == owner)) == 1
