"""Live-quality gauges on /metrics: the serving versions' latest window, computed when scraped and kept for
QUALITY_METRICS_CACHE_S (a scrape every few seconds costs SQL at most once per period, never per predict).

Labels are bounded: one series per serving version of a built-in dataset (a private upload's name and
versions never show on this unauthenticated page; their owners read GET /v1/models/{id}/quality).
"""
from __future__ import annotations

import math
import threading
import time

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from core import model_registry as registry
from core.db import session_scope
from core.quality import DriftThresholds, Quality, model_quality
from core.settings import Settings

# (name, help, the latest window's figure)
_GAUGES = (
    ("trainserve_model_requests", "files answered in the latest quality window", lambda w: w.requests),
    ("trainserve_model_abstain_rate", "abstained share of files answered", lambda w: w.abstain_rate),
    ("trainserve_model_low_confidence_rate", "low-confidence share of files answered", lambda w: w.low_confidence_rate),
    ("trainserve_model_label_js_divergence", "JS divergence (base 2) of the predicted-label mix from training's",
     lambda w: w.label_js),
    ("trainserve_model_confidence_mean", "mean top-1 confidence of answered files", lambda w: w.confidence.mean),
    ("trainserve_model_feedback_accuracy", "share of feedback confirming the label", lambda w: w.feedback_accuracy),
    ("trainserve_model_drift", "1: the label mix or confidence moved past its threshold; 0: not; NaN: too few files",
     lambda w: None if w.drift is None else float(w.drift)),
)


class QualityCollector(Collector):
    """Yields the gauges from a report of every serving version, recomputed once the cache is older than allowed."""

    def __init__(self) -> None:
        self.settings: Settings | None = None  # set by the app that serves /metrics
        self._lock = threading.Lock()
        self._cached: tuple[float, str | None, list[tuple[str, Quality]]] | None = None  # at, database, reports

    def describe(self):
        return []  # as ServiceCollector: no SQL at registration

    def collect(self):
        reports = self._reports()
        for name, help_text, figure in _GAUGES:
            gauge = GaugeMetricFamily(name, help_text, labels=["dataset", "model_id"])
            for dataset, quality in reports:
                value = figure(quality.windows[-1])
                gauge.add_metric([dataset, str(quality.model_version_id)], math.nan if value is None else value)
            yield gauge

    def _reports(self) -> list[tuple[str, Quality]]:
        settings = self.settings
        if settings is None:
            return []
        with self._lock:  # concurrent scrapes share one computation
            cached = self._cached
            if (cached is not None and cached[1] == settings.database_url
                    and time.monotonic() - cached[0] < settings.quality_metrics_cache_s):
                return cached[2]
            with session_scope(settings.database_url) as session:
                reports = [(v.dataset, model_quality(session, version=v, window_s=settings.quality_metrics_window_s,
                                                     windows=1, aligned=False,
                                                     thresholds=DriftThresholds.from_settings(settings)))
                           for v in registry.serving_versions(session)]
            self._cached = (time.monotonic(), settings.database_url, reports)
            return reports
