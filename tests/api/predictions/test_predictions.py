"""The prediction log over real HTTP with a real worker: ids on every answer, rows after the flush,
feedback, privacy, kept inputs, deletion and retention."""
from __future__ import annotations

import hashlib
import io
import re
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx
import pytest
from PIL import Image
from sqlalchemy import update

from core.artifacts import open_store
from core.orm import Prediction, utcnow
from core.predictions import delete_expired
from tests.utils.clients import api_client
from tests.utils.jobs import TINY_MNIST
from tests.utils.models import digit_png, predict, train_versions

pytestmark = pytest.mark.service


@pytest.fixture(scope="module")
def version(api):
    [v] = train_versions(api, 1)
    return v


@pytest.fixture(scope="module")
def alice(api_url, make_key):
    with api_client(api_url, make_key("pl-alice")) as c:
        yield c


@pytest.fixture(scope="module")
def bob(api_url, make_key):
    with api_client(api_url, make_key("pl-bob")) as c:
        yield c


@pytest.fixture(scope="module")
def store(service_settings):
    return open_store(service_settings.artifact_store_url, service_settings)


def _logged(client: httpx.Client, prediction_id: str, timeout_s: float = 10.0) -> dict:
    """GET /v1/predictions/{id} once the writer has flushed its row (every ~100 ms)."""
    deadline = time.monotonic() + timeout_s
    while True:
        response = client.get(f"/v1/predictions/{prediction_id}")
        if response.status_code == 200:
            return response.json()
        assert response.status_code == 404, response.text
        assert time.monotonic() < deadline, f"prediction {prediction_id} was not logged within {timeout_s}s"
        time.sleep(0.05)


def _blank_png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (255, 255, 255)).save(buf, format="PNG")
    return buf.getvalue()


def _one(client: httpx.Client, data: bytes, **form) -> dict:
    response = predict(client, "mnist", [("x.png", data)], **form)
    assert response.status_code == 200, response.text
    return response.json()["predictions"][0]


def test_every_answered_file_gets_an_id_and_a_row(alice, version):
    files = [("three.png", digit_png(3, seed=1)), ("blank.png", _blank_png()), ("seven.png", digit_png(7, seed=2))]
    response = predict(alice, "mnist", files)
    assert response.status_code == 200, response.text
    answers = response.json()["predictions"]
    ids = [a["prediction_id"] for a in answers]
    assert len(set(ids)) == 3 and answers[1]["abstained"]  # an abstention is an answer: it has an id too
    assert all("kept" not in a for a in answers)  # keep not asked
    for (name, data), answer in zip(files, answers):
        row = _logged(alice, answer["prediction_id"])
        assert row["input_sha256"] == hashlib.sha256(data).hexdigest() and row["input_size"] == len(data)
        assert row["model_id"] == response.json()["model"]["id"] and row["dataset"] == "mnist"
        assert row["owner"] == "pl-alice" and row["kept"] is False and row["input_url"] is None
        assert row["label"] == answer.get("label") and row["abstained"] == answer["abstained"]
        assert row["feedback"] is None
    listed = alice.get("/v1/predictions", params={"dataset": "mnist", "limit": 3}).json()
    assert {p["id"] for p in listed["data"]} == set(ids)  # newest first: this request's three
    metrics = alice.get("/metrics").text
    assert float(re.search(r"^trainserve_prediction_log_written_total (\S+)$", metrics, re.M).group(1)) >= 3
    assert re.search(r"^trainserve_prediction_log_dropped_total 0\.0$", metrics, re.M)


def test_feedback_takes_one_of_the_models_classes(alice, version):
    answer = _one(alice, digit_png(4, seed=3))
    _logged(alice, answer["prediction_id"])
    url = f"/v1/predictions/{answer['prediction_id']}/feedback"
    refused = alice.post(url, json={"label": "dog"})
    assert refused.status_code == 422, refused.text
    assert "'dog'" in refused.json()["detail"] and "'0', '1', '2'" in refused.json()["detail"]
    wrong = next(str(d) for d in range(10) if str(d) != answer["label"])
    given = alice.post(url, json={"label": wrong})
    assert given.status_code == 200, given.text
    assert given.json()["feedback"]["label"] == wrong and given.json()["feedback"]["by"] == "pl-alice"
    assert given.json()["wrong"] is True
    listed = alice.get("/v1/predictions", params={"wrong": "true"}).json()["data"]
    assert answer["prediction_id"] in [p["id"] for p in listed]
    again = alice.post(url, json={"label": answer["label"]})  # re-labelling: the last one counts
    assert again.status_code == 200 and again.json()["wrong"] is False
    assert answer["prediction_id"] not in [p["id"] for p in alice.get("/v1/predictions", params={"wrong": "true"}).json()["data"]]
    with_feedback = alice.get("/v1/predictions", params={"feedback": "with"}).json()["data"]
    without = alice.get("/v1/predictions", params={"feedback": "without"}).json()["data"]
    assert answer["prediction_id"] in [p["id"] for p in with_feedback]
    assert answer["prediction_id"] not in [p["id"] for p in without]


def test_someone_elses_prediction_is_a_404_naming_the_id(alice, bob, api, version):
    answer = _one(alice, digit_png(5, seed=4), keep="true")
    pid = answer["prediction_id"]
    _logged(alice, pid)
    for response in (bob.get(f"/v1/predictions/{pid}"), bob.get(f"/v1/predictions/{pid}/input"),
                     bob.post(f"/v1/predictions/{pid}/feedback", json={"label": "5"}),
                     bob.delete(f"/v1/predictions/{pid}")):
        assert response.status_code == 404, response.text
        assert pid in response.json()["detail"]
    assert pid not in [p["id"] for p in bob.get("/v1/predictions", params={"limit": 100}).json()["data"]]
    assert api.get(f"/v1/predictions/{pid}").json()["owner"] == "pl-alice"  # an admin sees everyone's
    assert alice.get(f"/v1/predictions/{pid}").status_code == 200  # bob's DELETE removed nothing


def test_a_kept_input_is_its_owners_to_download(alice, bob, version):
    png = digit_png(2, seed=5)
    answer = _one(alice, png, keep="true")
    assert answer["kept"] is True
    row = _logged(alice, answer["prediction_id"])
    assert row["kept"] and row["input_url"] == f"/v1/predictions/{answer['prediction_id']}/input"
    got = alice.get(row["input_url"])
    assert got.status_code == 200 and got.headers["content-type"] == "image/png" and got.content == png
    assert bob.get(row["input_url"]).status_code == 404
    # a JPEG upload comes back as a PNG of the same picture
    buf = io.BytesIO()
    Image.open(io.BytesIO(png)).convert("RGB").save(buf, format="JPEG")
    jpeg = _one(alice, buf.getvalue(), keep="true")
    served = alice.get(_logged(alice, jpeg["prediction_id"])["input_url"])
    assert served.status_code == 200 and served.content.startswith(b"\x89PNG")
    assert Image.open(io.BytesIO(served.content)).size == (100, 100)
    # not kept: a 404 that says why
    plain = _one(alice, png)
    _logged(alice, plain["prediction_id"])
    missing = alice.get(f"/v1/predictions/{plain['prediction_id']}/input")
    assert missing.status_code == 404 and "keep=true" in missing.json()["detail"]


def test_delete_removes_the_row_and_the_kept_input(alice, store, version):
    answer = _one(alice, digit_png(8, seed=6), keep="true")
    pid = answer["prediction_id"]
    _logged(alice, pid)
    assert store.exists(f"predictions/{pid}/input")
    assert alice.delete(f"/v1/predictions/{pid}").status_code == 204
    assert not store.exists(f"predictions/{pid}/input") and store.list(f"predictions/{pid}/") == []
    assert alice.get(f"/v1/predictions/{pid}").status_code == 404


def test_retention_deletes_old_rows_and_their_inputs(alice, store, db_session, version):
    old, recent = (_one(alice, digit_png(d, seed=7), keep="true")["prediction_id"] for d in (1, 6))
    _logged(alice, old), _logged(alice, recent)
    db_session.execute(update(Prediction).where(Prediction.id == old)
                       .values(created_at=utcnow() - timedelta(days=31)))
    db_session.commit()
    # the API's own maintenance pass (one per MAINTENANCE_INTERVAL_S, 15 s) finds it past PREDICTION_RETENTION_DAYS
    deadline = time.monotonic() + 60
    while alice.get(f"/v1/predictions/{old}").status_code != 404:
        assert time.monotonic() < deadline, "the maintenance pass did not delete a 31-day-old prediction in 60 s"
        time.sleep(0.5)
    assert not store.exists(f"predictions/{old}/input")
    assert alice.get(f"/v1/predictions/{recent}").status_code == 200 and store.exists(f"predictions/{recent}/input")
    # and the pass's function on its own: nothing left past the retention
    assert delete_expired(db_session, store=store, retention_days=30) == 0


@pytest.fixture
def in_process(service_settings, admin_key):
    """A TestClient app on the service's database and store, built with the settings a test gives."""
    from fastapi.testclient import TestClient

    from api.main import create_app
    from ml.data.registry import use_uploaded_datasets
    from tests.utils.clients import bearer

    def make(**settings):
        app = create_app(service_settings.model_copy(update={"redis_url": None, **settings}))
        client = TestClient(app, headers=bearer(admin_key))
        return app, client
    try:
        yield make
    finally:
        use_uploaded_datasets(None)  # create_app installs the DB lookup process-wide


def test_the_log_off_gives_no_ids_and_writes_no_rows(in_process, db_session, version):
    from sqlalchemy import func, select

    before = db_session.scalar(select(func.count()).select_from(Prediction))
    app, client = in_process(prediction_log=False)
    with client:
        response = predict(client, "mnist", [("a.png", digit_png()), ("b.png", digit_png(1))], keep="true")
    assert response.status_code == 200, response.text
    assert all("prediction_id" not in p and "kept" not in p for p in response.json()["predictions"])
    assert getattr(app.state, "prediction_log", None) is None
    assert db_session.scalar(select(func.count()).select_from(Prediction)) == before


def test_an_input_over_the_cap_is_logged_but_not_kept(in_process, store, version):
    small, large = digit_png(3, seed=8), digit_png(3, seed=8) + b"\x00" * 4096  # trailing bytes: still a PNG
    app, client = in_process(prediction_input_max_bytes=len(small))
    with client:  # the lifespan's end flushes the writer
        answers = predict(client, "mnist", [("s.png", small), ("l.png", large)], keep="true").json()["predictions"]
    assert [a["kept"] for a in answers] == [True, False]
    with in_process()[1] as client:
        rows = [client.get(f"/v1/predictions/{a['prediction_id']}").json() for a in answers]
    assert [r["kept"] for r in rows] == [True, False] and rows[1]["input_size"] == len(large)
    assert store.exists(f"predictions/{answers[0]['prediction_id']}/input")
    assert not store.list(f"predictions/{answers[1]['prediction_id']}/")


def test_deleting_a_job_removes_its_predictions_kept_inputs(api, store, db_session, version):
    [other] = train_versions(api, 1, {**TINY_MNIST, "hyperparameters": {**TINY_MNIST["hyperparameters"], "seed": 9}})
    serving = [m for m in (version, other) if api.get(f"/v1/models/{m['id']}").json()["serving"]]
    idle = other if serving != [other] else version
    answer = _one(api, digit_png(9, seed=9), keep="true", model_id=idle["id"])
    _logged(api, answer["prediction_id"])
    assert store.exists(f"predictions/{answer['prediction_id']}/input")
    assert api.delete(f"/v1/jobs/{idle['job_id']}").status_code == 204
    assert not store.list(f"predictions/{answer['prediction_id']}/")
    assert api.get(f"/v1/predictions/{answer['prediction_id']}").status_code == 404  # the row cascaded


def test_a_flood_of_unknown_ids_gets_its_404s_without_holding_every_thread(alice):
    # one unknown id waits once for the log's writers (feedback right after predict); at most four wait
    # at a time, so sixteen at once do not tie up sixteen of the threads the sync routes share
    def ask(i: int) -> tuple[int, float]:
        started = time.perf_counter()
        response = alice.get(f"/v1/predictions/00000000-0000-4000-8000-{i:012d}")
        return response.status_code, time.perf_counter() - started
    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(ask, range(16)))
    assert {status for status, _ in answers} == {404}
    waited = sum(seconds >= 0.29 for _, seconds in answers)
    assert 1 <= waited <= 4, answers
