"""Live quality on a real migrated database (SQLite, or PostgreSQL with TEST_DATABASE_URL): counts per
window match the rows, the divergence and the drift flag, feedback accuracy, and a bounded query count."""
from __future__ import annotations

import time
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import insert

from core.orm import Job, ModelVersion, Prediction, utcnow
from core.quality import DriftThresholds, first_window_start, js_divergence, model_quality
from tests.utils.sql import statements

NOW = datetime(2026, 1, 1, 12, 30, tzinfo=timezone.utc)  # aligned hourly windows end at 13:00
HOUR = 3600
DIGITS = [str(d) for d in range(10)]
UNIFORM_TRAIN = {d: 100 for d in DIGITS}
SMALL = DriftThresholds(min_requests=20, reference_size=20)


def add_version(session, *, train_label_counts=UNIFORM_TRAIN, private=False, owner=None, dataset="mnist") -> ModelVersion:
    """A registered version (and its job) to hang predictions on."""
    job = Job(id=str(uuid.uuid4()), model="mlp", dataset=dataset, status="succeeded", owner=owner,
              config={"model": "mlp", "dataset": dataset, "hyperparameters": {}}, seed=0)
    session.add(job)
    session.flush()
    version = ModelVersion(job_id=job.id, dataset=dataset, model="mlp", epoch=1, val_accuracy=0.9,
                           checkpoint_path=f"jobs/{job.id}/epoch-001.pt", checkpoint_sha256="0" * 64,
                           train_label_counts=train_label_counts, private=private, owner=owner)
    session.add(version)
    session.commit()
    return version


def prediction(version: ModelVersion, at: datetime, label: str = "1", confidence: float = 0.95, *,
               abstained: bool = False, low: bool = False, ood: bool | None = None,
               feedback: str | None = None) -> dict:
    """One prediction-log row, as the predict route writes it."""
    return dict(id=str(uuid.uuid4()), model_version_id=version.id, dataset=version.dataset, owner=version.owner,
                created_at=at, label=label, confidence=confidence, top_k=[{"label": label, "confidence": confidence}],
                abstained=abstained, low_confidence=low, out_of_distribution=ood, input_sha256="0" * 64,
                input_size=100, feedback_label=feedback)


def insert_rows(session, rows: list[dict]) -> None:
    for at in range(0, len(rows), 5000):
        session.execute(insert(Prediction), rows[at:at + 5000])
    session.commit()


def in_the_current_window(n: int, window_s: int = HOUR) -> list[datetime]:
    """n distinct times, latest first, all inside the clock-aligned window that holds now (rows spread
    back from now seconds apart would fall in the previous window when it began moments ago)."""
    now = utcnow()
    since = now - first_window_start(window_s=window_s, windows=1, now=now)
    return [now - since * (i + 1) / (n + 1) for i in range(n)]


def uniform(version, at: datetime, n: int, **kw) -> list[dict]:
    """n rows whose labels cycle through the ten digits, a second apart from `at`."""
    return [prediction(version, at + timedelta(seconds=i), DIGITS[i % 10], **kw) for i in range(n)]


def test_js_divergence_is_0_for_identical_and_1_for_disjoint_distributions():
    assert js_divergence({"a": 3, "b": 1}, {"a": 30, "b": 10}) == pytest.approx(0.0, abs=1e-12)
    assert js_divergence({"a": 5}, {"b": 2}) == pytest.approx(1.0)
    assert js_divergence({"a": 1, "b": 1}, {"a": 1}) == pytest.approx(0.3113, abs=1e-4)  # known value
    with pytest.raises(ValueError):
        js_divergence({}, {"a": 1})


def test_counts_and_rates_per_window_match_the_rows(db_session):
    version = add_version(db_session)
    base = datetime(2026, 1, 1, 10, 0, tzinfo=timezone.utc)
    rows = [prediction(version, base + timedelta(minutes=5), "3", 0.85, feedback="3"),
            prediction(version, base + timedelta(minutes=6), "3", 0.55, low=True, feedback="8"),
            prediction(version, base + timedelta(minutes=7), "", 0.0, abstained=True),
            prediction(version, base + timedelta(minutes=8), "7", 1.0, ood=True, feedback="7"),
            prediction(version, base + timedelta(hours=2, minutes=1), "7", 0.91, ood=False),
            # outside the three windows (10:00 .. 13:00): not counted
            prediction(version, base - timedelta(minutes=1), "7", 0.9),
            prediction(version, base + timedelta(hours=3, minutes=1), "7", 0.9)]
    insert_rows(db_session, rows)
    quality = model_quality(db_session, version=version, window_s=HOUR, windows=3, now=NOW, thresholds=SMALL)
    first, empty, last = quality.windows
    assert (first.start, last.end) == (base, base + timedelta(hours=3))
    assert [w.requests for w in quality.windows] == [4, 0, 1]
    assert first.abstain_rate == pytest.approx(0.25) and first.low_confidence_rate == pytest.approx(0.25)
    assert first.ood_rate == pytest.approx(1.0) and last.ood_rate == pytest.approx(0.0)  # only judged rows count
    assert first.label_counts == {"3": 2, "7": 1} and last.label_counts == {"7": 1}  # abstentions have no label
    assert first.confidence.count == 3 and first.confidence.mean == pytest.approx((0.85 + 0.55 + 1.0) / 3)
    assert first.confidence.histogram == [0, 0, 0, 0, 0, 1, 0, 0, 1, 1]  # 1.0 falls in the last bin
    assert first.feedback == 3 and first.feedback_accuracy == pytest.approx(2 / 3)
    assert empty.requests == 0 and empty.abstain_rate is None and empty.label_js is None and empty.drift is None
    assert first.drift is None  # 3 answered files: too few to judge


def test_identical_label_mix_does_not_drift_and_a_shifted_one_does(db_session):
    version = add_version(db_session)
    calm = uniform(version, datetime(2026, 1, 1, 10, 0, tzinfo=timezone.utc), 100)
    # 12:00: the same traffic, but seven in ten files are read as "1" (a misread style arriving)
    shifted = [prediction(version, datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc) + timedelta(seconds=i),
                          "1" if i % 10 < 7 else DIGITS[i % 10]) for i in range(100)]
    insert_rows(db_session, calm + shifted)
    quality = model_quality(db_session, version=version, window_s=HOUR, windows=3, now=NOW, thresholds=SMALL)
    first, _, last = quality.windows
    assert first.label_js == pytest.approx(0.0, abs=1e-12) and first.drift is False
    assert last.label_js > 0.3 and last.drift is True and "label mix" in last.drift_reasons[0]
    assert quality.drift is True and quality.label_mix_available


def test_a_confidence_drop_drifts_against_the_versions_first_predictions(db_session):
    version = add_version(db_session)
    sure = uniform(version, datetime(2026, 1, 1, 10, 0, tzinfo=timezone.utc), 50, confidence=0.97)
    unsure = uniform(version, datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc), 50, confidence=0.6)
    insert_rows(db_session, sure + unsure)
    quality = model_quality(db_session, version=version, window_s=HOUR, windows=3, now=NOW, thresholds=SMALL)
    assert quality.reference.count == 20 and quality.reference.mean == pytest.approx(0.97)
    first, _, last = quality.windows
    assert first.drift is False and first.confidence_shift == pytest.approx(0.0, abs=1e-9)
    assert last.drift is True and last.confidence_shift == pytest.approx(-0.37)
    assert last.label_js == pytest.approx(0.0, abs=1e-12)  # the label mix alone would not have flagged it


def test_without_training_counts_the_label_mix_is_unavailable_not_an_error(db_session):
    version = add_version(db_session, train_label_counts=None)
    insert_rows(db_session, uniform(version, datetime(2026, 1, 1, 12, 0, tzinfo=timezone.utc), 30))
    quality = model_quality(db_session, version=version, window_s=HOUR, windows=3, now=NOW, thresholds=SMALL)
    assert not quality.label_mix_available and quality.windows[-1].label_js is None
    assert quality.windows[-1].requests == 30 and quality.windows[-1].drift is False


def test_168_five_minute_windows_place_each_row(db_session):
    version = add_version(db_session)
    start = datetime(2026, 1, 1, 12, 35, tzinfo=timezone.utc) - timedelta(minutes=5 * 168)
    # one row 2.5 minutes into every third window
    insert_rows(db_session, [prediction(version, start + timedelta(minutes=5 * i + 2.5)) for i in range(0, 168, 3)])
    quality = model_quality(db_session, version=version, window_s=300, windows=168, now=NOW)
    assert [w.requests for w in quality.windows] == [1 if i % 3 == 0 else 0 for i in range(168)]



@pytest.mark.slow
def test_100k_rows_cost_three_queries(db_session, db_engine):
    version = add_version(db_session)
    start = datetime(2026, 1, 1, 13, 0, tzinfo=timezone.utc) - timedelta(hours=24)
    rows = [prediction(version, start + timedelta(seconds=i * 0.864), DIGITS[i % 10], 0.5 + (i % 50) / 100,
                       feedback=DIGITS[i % 10] if i % 100 == 0 else None) for i in range(100_000)]
    insert_rows(db_session, rows)
    began = time.perf_counter()
    quality, seen = statements(db_engine, lambda: model_quality(db_session, version=version, window_s=HOUR,
                                                                 windows=24, now=NOW))
    seconds = time.perf_counter() - began
    print(f"\nquality over 100k rows, 24 hourly windows: {len(seen)} statements, {seconds:.2f}s "
          f"({db_engine.dialect.name})")
    assert len(seen) == 3, seen
    assert sum(w.requests for w in quality.windows) == 100_000
    assert sum(w.feedback for w in quality.windows) == 1000
    assert all(w.feedback_accuracy == 1.0 for w in quality.windows)
