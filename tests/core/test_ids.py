"""Job and sweep ids by unambiguous prefix, on a real migrated database: one bounded, indexed query."""
from __future__ import annotations

import pytest
from sqlalchemy import event

from core.errors import AmbiguousId, JobNotFound, SweepNotFound
from core.ids import MAX_LISTED, as_prefix, ids_starting_with
from core.jobs import get_job
from core.orm import Job, JobStatus
from core.sweeps import get_sweep

pytestmark = pytest.mark.service

TAIL = "-4f1c-9a2b-0123456789ab"
MANY = [f"c0ffee00-000{n}{TAIL}" for n in range(MAX_LISTED + 2)]
OTHER, THEIRS = f"c0ffee11-1111{TAIL}", f"c0ffee22-2222{TAIL}"


@pytest.fixture
def jobs(db_session):
    for job_id in [*MANY, OTHER, THEIRS]:
        db_session.add(Job(id=job_id, model="mlp", dataset="mnist", seed=0, status=JobStatus.queued,
                           owner="prefix-b" if job_id == THEIRS else "prefix-a",
                           config={"model": "mlp", "dataset": "mnist", "hyperparameters": {}}))
    db_session.commit()
    yield
    db_session.query(Job).filter(Job.id.in_([*MANY, OTHER, THEIRS])).delete()
    db_session.commit()


def test_a_prefix_of_one_job_finds_it_and_a_full_id_still_does(db_session, jobs):
    assert get_job(db_session, job_id=OTHER).id == OTHER
    assert get_job(db_session, job_id="c0ffee11").id == OTHER
    assert get_job(db_session, job_id="C0FFEE11-11").id == OTHER  # ids are lower-case; a pasted upper-case one too
    assert get_job(db_session, job_id="c0ffee00-0003").id == MANY[3]


def test_an_ambiguous_prefix_is_refused_listing_a_bounded_number_of_matches(db_session, jobs):
    with pytest.raises(AmbiguousId) as refused:
        get_job(db_session, job_id="c0ffee00")
    listed = ", ".join(MANY[:MAX_LISTED])
    assert str(refused.value) == (f"job id prefix 'c0ffee00' matches more than {MAX_LISTED} jobs ({listed}, …); "
                                  "give more characters")


def test_others_jobs_are_neither_found_nor_listed(db_session, jobs):
    with pytest.raises(JobNotFound, match="'c0ffee22'"):
        get_job(db_session, job_id="c0ffee22", owner="prefix-a")
    assert get_job(db_session, job_id="c0ffee22", owner="prefix-b").id == THEIRS
    with pytest.raises(JobNotFound, match="'c0ffee00'"):  # a's seven are not b's: no 409 that would list them
        get_job(db_session, job_id="c0ffee00", owner="prefix-b")


def test_unknown_short_or_odd_prefixes_are_404_naming_them(db_session, jobs):
    for given in ("deadbeef", "c0ffee1", "c0ffee1%", "c0ffee1_-1111", "x" * 40):
        with pytest.raises(JobNotFound) as missing:
            get_job(db_session, job_id=given)
        assert repr(given) in str(missing.value) and "first 8 characters" in str(missing.value)
    with pytest.raises(SweepNotFound, match="'c0ffee11'"):
        get_sweep(db_session, sweep_id="c0ffee11")


def test_as_prefix_takes_8_to_35_hex_characters_and_dashes():
    assert as_prefix("2C60F708") == "2c60f708"
    assert as_prefix("2c60f708-f39c") == "2c60f708-f39c"
    assert [as_prefix(x) for x in ("2c60f70", "2c60f708%", "2c60f708_", "x" * 8, "a" * 36)] == [None] * 5


def test_the_prefix_query_reads_the_primary_key_index(db_session, jobs):
    if db_session.bind.dialect.name != "sqlite":
        pytest.skip("EXPLAIN QUERY PLAN is SQLite's")
    sent = []

    def keep(_conn, _cursor, statement, parameters, _context, _many):
        sent.append((statement, parameters))

    event.listen(db_session.bind, "before_cursor_execute", keep)
    try:
        ids_starting_with(db_session, Job.id, "c0ffee11", kind="job")
    finally:
        event.remove(db_session.bind, "before_cursor_execute", keep)
    (statement, parameters), = sent
    assert "LIMIT" in statement
    plan = db_session.connection().exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters).all()
    said = " ".join(str(row[-1]) for row in plan)
    assert "SEARCH" in said and "INDEX" in said and "SCAN" not in said, said
