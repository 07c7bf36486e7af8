"""Live quality of a model version over time windows, from the prediction log, and whether it drifted.

Per window: requests (files answered), abstain / low-confidence / out-of-distribution rates, the
predicted-label mix and its Jensen–Shannon divergence from the training split's mix, the confidence
distribution (mean, 10-bin histogram) and its shift from the version's reference, and feedback accuracy.

The reference confidence is the version's first `reference_size` answered predictions (not a time
window: it holds the same number of samples whatever the window size, and it never moves). Validation-time
confidence is not recorded, so it cannot be the reference.

The aggregation is SQL, GROUP BY a window index computed from the timestamp (a dialect's own epoch
arithmetic: SQLite's julianday, PostgreSQL's extract(epoch)); a report costs three queries whatever
the number of rows.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from math import log2

from sqlalchemy import Integer, and_, case, cast, extract, func, literal_column, select
from sqlalchemy.orm import Session

from core.orm import ModelVersion, Prediction, utcnow
from core.settings import Settings

MIN_WINDOW_S, MAX_WINDOW_S = 5 * 60, 7 * 24 * 3600  # 5m .. 7d
MAX_WINDOWS = 168  # a week of hours
BINS = 10  # confidence histogram: [0, 0.1), ..., [0.9, 1.0]


_UNIT_S = {"m": 60, "h": 3600, "d": 86400}


def window_seconds(text: str) -> int:
    """'5m', '1h', '7d' → seconds; ValueError naming the allowed range when outside 5m..7d."""
    try:
        seconds = int(text[:-1]) * _UNIT_S[text[-1]]
    except (KeyError, ValueError, IndexError):
        raise ValueError(f"a number and a unit m, h or d (e.g. 1h), got {text!r}") from None
    if not MIN_WINDOW_S <= seconds <= MAX_WINDOW_S:
        raise ValueError(f"must be between 5m and 7d, got {text!r}")
    return seconds


@dataclass(frozen=True)
class DriftThresholds:
    """When a window counts as drifted (settings DRIFT_*; README "Live quality and drift" says why these)."""

    label_js: float = 0.05  # JS divergence (base 2, 0..1) of the predicted-label mix from training's
    confidence_shift: float = 0.1  # |mean confidence − the reference's mean|
    min_requests: int = 100  # fewer answered files: too few to tell (drift is None)
    reference_size: int = 200  # the version's first answered predictions form the confidence reference

    @classmethod
    def from_settings(cls, settings: Settings) -> "DriftThresholds":
        """The thresholds the DRIFT_* settings name."""
        return cls(label_js=settings.drift_js_threshold, confidence_shift=settings.drift_confidence_shift,
                   min_requests=settings.drift_min_requests, reference_size=settings.drift_reference_size)


@dataclass
class ConfidenceSummary:
    """Top-1 confidence of answered (not abstained) files: count, mean and a 10-bin histogram."""

    count: int = 0
    mean: float | None = None
    histogram: list[int] = field(default_factory=lambda: [0] * BINS)


@dataclass
class QualityWindow:
    """One time window's figures (rates are None when nothing they divide by arrived)."""

    start: datetime
    end: datetime
    requests: int = 0  # files answered, abstentions included
    abstain_rate: float | None = None
    low_confidence_rate: float | None = None
    ood_rate: float | None = None  # over the files the version could judge (calibrated versions only)
    label_counts: dict[str, int] = field(default_factory=dict)  # of answered, not abstained, files
    label_js: float | None = None  # None: no answered file, or no training mix to compare with
    confidence: ConfidenceSummary = field(default_factory=ConfidenceSummary)
    confidence_shift: float | None = None  # mean − the reference's mean
    feedback: int = 0
    feedback_accuracy: float | None = None  # share of feedback that confirmed the label
    drift: bool | None = None  # None: fewer than min_requests answered files
    drift_reasons: list[str] = field(default_factory=list)


@dataclass
class Quality:
    """A version's windows (oldest first), what they are compared with, and the overall drift flag."""

    model_version_id: int
    window_s: int
    windows: list[QualityWindow]
    train_label_counts: dict[str, int] | None  # None: registered before the engine reported them
    reference: ConfidenceSummary
    thresholds: DriftThresholds
    drift: bool  # any window drifted

    @property
    def label_mix_available(self) -> bool:
        return bool(self.train_label_counts)


def js_divergence(p: Mapping[str, float], q: Mapping[str, float]) -> float:
    """Jensen–Shannon divergence (base 2: 0 identical … 1 disjoint) of two count or probability maps."""
    p_total, q_total = sum(p.values()), sum(q.values())
    if p_total <= 0 or q_total <= 0:
        raise ValueError("both distributions need a positive total")
    total = 0.0
    for key in set(p) | set(q):
        a, b = p.get(key, 0) / p_total, q.get(key, 0) / q_total
        m = (a + b) / 2
        total += (a * log2(a / m) if a > 0 else 0.0) + (b * log2(b / m) if b > 0 else 0.0)
    return min(1.0, max(0.0, total / 2))


def first_window_start(*, window_s: int, windows: int, now: datetime | None = None, aligned: bool = True) -> datetime:
    """The start of the first of `windows` windows; aligned: they end at the end of the window holding `now`
    (so a window's figures stay put between requests), else at `now` (the latest `window_s` exactly)."""
    now = now or utcnow()
    stamp = now.timestamp()
    end = (stamp // window_s + 1) * window_s if aligned else stamp // 1  # whole seconds: exact window edges
    return datetime.fromtimestamp(end - windows * window_s, tz=timezone.utc)


def model_quality(session: Session, *, version: ModelVersion, window_s: int, windows: int,
                  thresholds: DriftThresholds = DriftThresholds(), now: datetime | None = None,
                  aligned: bool = True) -> Quality:
    """The version's quality over `windows` windows of `window_s` seconds ending now (three queries)."""
    if not (MIN_WINDOW_S <= window_s <= MAX_WINDOW_S and 1 <= windows <= MAX_WINDOWS):
        raise ValueError(f"window_s must be {MIN_WINDOW_S}..{MAX_WINDOW_S} and windows 1..{MAX_WINDOWS}")
    start = first_window_start(window_s=window_s, windows=windows, now=now, aligned=aligned)
    rows = [QualityWindow(start=start + timedelta(seconds=i * window_s),
                          end=start + timedelta(seconds=(i + 1) * window_s)) for i in range(windows)]
    in_range = and_(Prediction.model_version_id == version.id, Prediction.created_at >= start,
                    Prediction.created_at < rows[-1].end)
    index = _window_index(session, start, window_s)
    _fill_figures(session, rows, index, in_range)
    _fill_labels(session, rows, index, in_range)
    reference = _reference(session, version.id, thresholds.reference_size)
    for row in rows:
        _judge(row, version.train_label_counts, reference, thresholds)
    return Quality(model_version_id=version.id, window_s=window_s, windows=rows,
                   train_label_counts=version.train_label_counts, reference=reference, thresholds=thresholds,
                   drift=any(row.drift for row in rows))


def _window_index(session: Session, start: datetime, window_s: int):
    """SQL for the window a row falls in: whole `window_s` periods since `start` (rows before it are filtered).

    Exact arithmetic, so a row on a boundary lands in the later window as the range filter says: whole
    seconds on SQLite (boundaries are whole seconds), PostgreSQL's numeric epoch."""
    offset = int(start.timestamp())
    if session.get_bind().dialect.name == "sqlite":
        seconds = cast(func.strftime("%s", Prediction.created_at), Integer) - offset
        return seconds // window_s  # integer division; floor here, as seconds >= 0
    return func.floor((extract("epoch", Prediction.created_at) - offset) / window_s)


def _count_if(condition):
    # SUM(CASE ...) rather than SUM(boolean): PostgreSQL has no sum over booleans
    return func.sum(case((condition, 1), else_=0))


def _histogram(conf, answered=None) -> list:
    """SQL counts of `conf` per confidence bin (where `answered`); the last bin holds 1.0."""
    edges = [conf >= i / BINS for i in range(BINS)]
    bins = [and_(edges[i], conf < (i + 1) / BINS) if i < BINS - 1 else edges[i] for i in range(BINS)]
    return [_count_if(b if answered is None else and_(answered, b)) for b in bins]


def _fill_figures(session: Session, rows: list[QualityWindow], index, in_range) -> None:
    """Counts, rates, confidence and feedback per window: one GROUP BY query."""
    answered = Prediction.abstained.is_(False)
    query = select(
        index.label("window_index"), func.count(), _count_if(Prediction.abstained.is_(True)),
        _count_if(Prediction.low_confidence.is_(True)), func.count(Prediction.out_of_distribution),
        _count_if(Prediction.out_of_distribution.is_(True)), func.count(Prediction.feedback_label),
        _count_if(Prediction.feedback_label == Prediction.label), func.count(case((answered, 1))),
        func.avg(case((answered, Prediction.confidence))), *_histogram(Prediction.confidence, answered),
    ).where(in_range).group_by(literal_column("window_index"))  # by its name: PostgreSQL can't match bound params
    for found in session.execute(query):
        i, requests, abstained, low, judged, ood, feedback, confirmed, answered_n, mean, *bins = found
        row = rows[min(max(int(i), 0), len(rows) - 1)]  # float rounding at an edge stays in range
        row.requests, row.feedback = int(requests), int(feedback or 0)
        row.abstain_rate, row.low_confidence_rate = (abstained or 0) / requests, (low or 0) / requests
        row.ood_rate = (ood or 0) / judged if judged else None
        row.feedback_accuracy = (confirmed or 0) / feedback if feedback else None
        row.confidence = ConfidenceSummary(count=int(answered_n or 0), mean=float(mean) if mean is not None else None,
                                           histogram=[int(b or 0) for b in bins])


def _fill_labels(session: Session, rows: list[QualityWindow], index, in_range) -> None:
    """Predicted-label counts per window over answered files: one GROUP BY query."""
    query = (select(index.label("window_index"), Prediction.label, func.count())
             .where(in_range, Prediction.abstained.is_(False))
             .group_by(literal_column("window_index"), Prediction.label))
    for i, label, n in session.execute(query):
        counts = rows[min(max(int(i), 0), len(rows) - 1)].label_counts
        counts[label] = counts.get(label, 0) + int(n)


def _reference(session: Session, version_id: int, size: int) -> ConfidenceSummary:
    """The confidence of the version's first `size` answered predictions: one query over a LIMITed subquery."""
    first = (select(Prediction.confidence.label("confidence"))
             .where(Prediction.model_version_id == version_id, Prediction.abstained.is_(False))
             .order_by(Prediction.created_at, Prediction.id).limit(size).subquery())
    conf = first.c.confidence
    count, mean, *histogram = session.execute(select(func.count(), func.avg(conf), *_histogram(conf))).one()
    return ConfidenceSummary(count=int(count or 0), mean=float(mean) if mean is not None else None,
                             histogram=[int(b or 0) for b in histogram])


def _judge(row: QualityWindow, train: dict[str, int] | None, reference: ConfidenceSummary,
           thresholds: DriftThresholds) -> None:
    """The window's divergence, confidence shift and drift flag against the thresholds."""
    if train and row.label_counts:
        row.label_js = js_divergence(row.label_counts, train)
    if row.confidence.mean is not None and reference.mean is not None:
        row.confidence_shift = row.confidence.mean - reference.mean
    if row.confidence.count < thresholds.min_requests:
        return  # too few to tell: sampling noise alone moves small windows past any useful threshold
    if row.label_js is not None and row.label_js > thresholds.label_js:
        row.drift_reasons.append(f"label mix: JS {row.label_js:.3f} > {thresholds.label_js}")
    shift = row.confidence_shift
    if shift is not None and reference.count >= thresholds.min_requests and abs(shift) > thresholds.confidence_shift:
        row.drift_reasons.append(f"confidence: mean moved {shift:+.3f} (limit ±{thresholds.confidence_shift})")
    row.drift = bool(row.drift_reasons)
