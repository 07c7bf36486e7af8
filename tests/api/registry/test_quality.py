"""GET /v1/models/{id}/quality on a real migrated database with prediction rows inserted as the log writes
them: the figures, who may see them, the window parameters' 422s, and a bounded number of statements."""
from __future__ import annotations

from datetime import timedelta

import pytest
from prometheus_client.parser import text_string_to_metric_families
from fastapi.testclient import TestClient

from core.db import get_engine, session_scope
from core.keys import create_key
from core.orm import ModelVersion, Role, ServingEvent, utcnow
from core.quality import first_window_start
from core.settings import Settings
from tests.utils.sql import statements
from tests.core.test_quality import DIGITS, add_version, in_the_current_window, insert_rows, prediction
from tests.utils.clients import bearer


@pytest.fixture
def world(tmp_path):
    """An API on a fresh database with alice's private version, a shared version, and their predictions."""
    from api.main import create_app
    from ml.data.registry import use_uploaded_datasets
    from tests.utils.databases import fresh_database

    with fresh_database(tmp_path) as url:
        with session_scope(url) as session:
            keys = {who: create_key(session, owner=who, role=role)[1]
                    for who, role in (("alice", Role.user), ("bob", Role.user), ("root", Role.admin))}
            private = add_version(session, private=True, owner="alice", dataset="alices-shapes",
                                  train_label_counts={"circle": 50, "square": 50})
            shared = add_version(session, train_label_counts=None)
            # the three hourly windows the tests ask for (aligned: the last one holds now)
            start = first_window_start(window_s=3600, windows=3, now=utcnow())
            # alice's: 60 circles in the first window; 120 read as squares in the last, 40 with feedback (30 right)
            insert_rows(session, [prediction(private, start + timedelta(minutes=30, seconds=i), "circle")
                                  for i in range(60)]
                        + [prediction(private, start + timedelta(hours=2, seconds=i), "square",
                                      feedback=("square" if i < 30 else "circle") if i < 40 else None)
                           for i in range(120)])
            # in the current 5-minute window, so in every window the tests ask for that holds now
            insert_rows(session, [prediction(shared, at, DIGITS[i % 10])
                                  for i, at in enumerate(in_the_current_window(7, window_s=300))])
            for version in (private, shared):  # both serve their dataset: /metrics shows the shared one only
                session.add(ServingEvent(dataset=version.dataset, model_version_id=version.id, reason="promoted"))
            session.commit()
            ids = {"private": private.id, "shared": shared.id}
        settings = Settings(database_url=url, redis_url=None, drift_min_requests=50)
        try:
            with TestClient(create_app(settings)) as client:
                yield client, keys, ids, get_engine(url)
        finally:
            use_uploaded_datasets(None)
            get_engine(url).dispose()


def _get(client, key, model_id, **params):
    return client.get(f"/v1/models/{model_id}/quality", params=params, headers=bearer(key))


def test_the_report_counts_what_was_logged_and_flags_the_shifted_mix(world):
    client, keys, ids, _ = world
    response = _get(client, keys["alice"], ids["private"], window="1h", windows=3)
    assert response.status_code == 200, response.text
    report = response.json()
    assert report["window_seconds"] == 3600 and len(report["windows"]) == 3 and report["dataset"] == "alices-shapes"
    circles, empty, squares = report["windows"]
    assert [w["requests"] for w in report["windows"]] == [60, 0, 120]
    assert circles["label_counts"] == {"circle": 60} and squares["label_counts"] == {"square": 120}
    assert squares["feedback"] == 40 and squares["feedback_accuracy"] == pytest.approx(0.75)
    # all of one class against a 50/50 training split: JS = 1 − H(¼, ¾)/2 ≈ 0.311, past the 0.05 threshold
    assert circles["label_js"] == pytest.approx(0.3113, abs=1e-3) and circles["drift"] is True
    assert empty["drift"] is None and empty["abstain_rate"] is None and report["drift"] is True
    assert report["label_mix"].startswith("compared") and report["thresholds"]["min_requests"] == 50


def test_a_version_without_training_counts_says_the_mix_is_unavailable(world):
    client, keys, ids, _ = world
    report = _get(client, keys["bob"], ids["shared"], window="5m", windows=2).json()
    assert report["label_mix"].startswith("unavailable") and report["train_label_counts"] is None
    assert sum(w["requests"] for w in report["windows"]) == 7
    assert all(w["label_js"] is None and w["drift"] is None for w in report["windows"])  # 7 < 50: too few
    assert report["drift"] is False


def test_another_users_private_version_is_404_its_owner_and_admins_see_it(world):
    client, keys, ids, _ = world
    assert _get(client, keys["bob"], ids["private"]).status_code == 404
    assert _get(client, keys["bob"], 99999).status_code == 404
    assert _get(client, keys["alice"], ids["private"]).status_code == 200
    assert _get(client, keys["root"], ids["private"]).status_code == 200


@pytest.mark.parametrize("params, field", [({"window": "1m"}, "window"), ({"window": "8d"}, "window"),
                                           ({"window": "1w"}, "window"), ({"windows": 0}, "windows"),
                                           ({"windows": 169}, "windows")])
def test_a_window_outside_its_range_is_a_422_naming_it(world, params, field):
    client, keys, ids, _ = world
    response = _get(client, keys["alice"], ids["private"], **params)
    assert response.status_code == 422, response.text
    assert response.json()["detail"][0]["loc"] == ["query", field]


def test_the_report_costs_the_same_statements_for_7_and_180_rows(world):
    client, keys, ids, engine = world
    _get(client, keys["root"], ids["shared"])  # the key verified once: both requests find it remembered
    few, few_seen = statements(engine, lambda: _get(client, keys["root"], ids["shared"], windows=168))
    many, many_seen = statements(engine, lambda: _get(client, keys["root"], ids["private"], windows=168))
    assert few.status_code == many.status_code == 200
    assert len(few_seen) == len(many_seen) <= 5, many_seen  # the version's lookup, then three aggregates


def _gauges(client, key) -> dict[str, dict[tuple, float]]:
    text = client.get("/metrics", headers=bearer(key)).text
    return {f.name: {(s.labels.get("dataset"), s.labels.get("model_id")): s.value for s in f.samples}
            for f in text_string_to_metric_families(text) if f.name.startswith("trainserve_model_")}


def test_metrics_show_the_shared_serving_versions_latest_window_and_cache_it(world):
    client, keys, ids, engine = world
    gauges = _gauges(client, keys["bob"])
    shared = ("mnist", str(ids["shared"]))
    assert gauges["trainserve_model_requests"] == {shared: 7}  # alice's private version never shows
    assert gauges["trainserve_model_abstain_rate"][shared] == 0.0
    drift = gauges["trainserve_model_drift"][shared]
    assert drift != drift  # NaN: 7 files are too few to judge
    assert set(gauges) >= {"trainserve_model_label_js_divergence", "trainserve_model_feedback_accuracy"}
    with session_scope(str(engine.url.render_as_string(hide_password=False))) as session:
        insert_rows(session, [prediction(session.get(ModelVersion, ids["shared"]), utcnow(), "3")])
    _, seen = statements(engine, lambda: _gauges(client, keys["bob"]))
    assert not any("predictions" in s for s in seen)  # within QUALITY_METRICS_CACHE_S: no SQL for them
    assert _gauges(client, keys["bob"])["trainserve_model_requests"][shared] == 7


def test_the_quality_plot_is_a_png_for_whoever_sees_the_version(world):
    client, keys, ids, _ = world
    url = f"/v1/models/{ids['private']}/quality.png"
    response = client.get(url, params={"window": "1h", "windows": 3}, headers=bearer(keys["alice"]))
    assert response.status_code == 200 and response.content.startswith(b"\x89PNG")
    again = client.get(url, params={"window": "1h", "windows": 3},
                       headers={**bearer(keys["alice"]), "If-None-Match": response.headers["etag"]})
    assert again.status_code == 304  # nothing new arrived: not drawn again
    assert client.get(url, headers=bearer(keys["bob"])).status_code == 404
    assert client.get(url, params={"window": "9d"}, headers=bearer(keys["alice"])).status_code == 422
