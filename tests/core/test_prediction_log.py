"""The prediction log's writer on a real database and a real local store: batches, kept inputs, drops."""
from __future__ import annotations

import time
import uuid

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import event, func, select, text

from core.artifacts import open_store
from core.db import get_engine, get_sessionmaker, session_scope
from core.orm import Job, JobStatus, ModelVersion, Prediction, utcnow
from core.feedback import feedback_rows
from core.predictions import LoggedPrediction, PredictionLog, input_key, media_type
from tests.utils.databases import fresh_database
from tests.utils.models import digit_png


@pytest.fixture
def logged(tmp_path):
    """(database url, a model version id, a local store) to log predictions into."""
    with fresh_database(tmp_path / "db") as url:
        with session_scope(url) as session:
            job = Job(id=str(uuid.uuid4()), model="mlp", dataset="mnist", seed=1, config={},
                      status=JobStatus.succeeded)
            version = ModelVersion(job_id=job.id, dataset="mnist", model="mlp", epoch=1, val_accuracy=0.9,
                                   checkpoint_path="jobs/x/epoch-001.pt", checkpoint_sha256="0" * 64)
            session.add_all([job, version])
            session.commit()
            version_id = version.id
        try:
            yield url, version_id, open_store((tmp_path / "store").as_uri())
        finally:
            get_engine(url).dispose()


def _entry(version_id: int, data: bytes | None = None, label: str = "7") -> LoggedPrediction:
    row = {"id": str(uuid.uuid4()), "model_version_id": version_id, "dataset": "mnist", "owner": "alice",
           "created_at": utcnow(), "label": label, "confidence": 0.9, "top_k": [{"label": label, "confidence": 0.9}],
           "abstained": False, "low_confidence": False, "out_of_distribution": None, "input_sha256": "a" * 64,
           "input_size": 10, "input_key": None, "input_media_type": None}
    return LoggedPrediction(row, data)


def _dropped() -> float:
    return REGISTRY.get_sample_value("trainserve_prediction_log_dropped_total") or 0.0


def test_rows_go_in_one_batch_and_kept_inputs_to_the_store(logged):
    url, version_id, store = logged
    log = PredictionLog(get_sessionmaker(url), store)
    png = digit_png()
    entries = [_entry(version_id, png if i % 10 == 0 else None) for i in range(200)]
    inserts: list[str] = []
    listener = lambda *args: inserts.append(args[2]) if args[2].startswith("INSERT INTO predictions") else None
    event.listen(get_engine(url), "before_cursor_execute", listener)
    try:
        log.add(entries)
        assert log.flush()
    finally:
        event.remove(get_engine(url), "before_cursor_execute", listener)
        log.close()
    assert len(inserts) <= 2, inserts  # one executemany (SQLAlchemy may split it in two statements at most)
    with session_scope(url) as session:
        assert session.scalar(select(func.count()).select_from(Prediction)) == 200
        kept = session.scalars(select(Prediction).where(Prediction.input_key.is_not(None))).all()
        assert len(kept) == 20 and {k.input_media_type for k in kept} == {"image/png"}
        assert all(k.input_key == input_key(k.id) and store.open(k.input_key).read() == png for k in kept)
        session.execute(Prediction.__table__.update().where(Prediction.id == kept[0].id).values(feedback_label="1"))
        session.commit()
        assert [p.id for p in feedback_rows(session, dataset="mnist")] == [kept[0].id]


def test_a_full_queue_drops_and_counts_instead_of_blocking(logged):
    url, version_id, store = logged
    if not url.startswith("sqlite"):
        pytest.skip("holds SQLite's write lock to stall the writer")
    log = PredictionLog(get_sessionmaker(url), store, max_queue=10)
    before = _dropped()
    with get_engine(url).connect() as blocker:
        blocker.execute(text("BEGIN IMMEDIATE"))  # the writer's insert now waits for this lock
        log.add([_entry(version_id)])
        time.sleep(0.4)  # the writer took it and waits in its insert
        started = time.monotonic()
        log.add([_entry(version_id) for _ in range(100)])
        assert time.monotonic() - started < 0.5  # predict is never held up by the log
        blocker.execute(text("ROLLBACK"))
    assert log.flush()
    log.close()
    assert _dropped() - before == 90
    with session_scope(url) as session:
        assert session.scalar(select(func.count()).select_from(Prediction)) == 11


def test_media_types_from_the_first_bytes():
    assert media_type(digit_png()) == "image/png" and media_type(b"\xff\xd8\xff\xe0") == "image/jpeg"
    assert media_type(b"RIFF\x00\x00\x00\x00WEBPVP8 ") == "image/webp" and media_type(b"??") == "application/octet-stream"
