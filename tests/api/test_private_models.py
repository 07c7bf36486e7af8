"""Private means private for everything derived from an upload: its model versions, exports, predictions,
plots, rows predictions, registry history and catalog entry answer another user 404, as an unknown id or
name would. Over HTTP with a real worker: alice uploads and trains, bob tries every route."""
from __future__ import annotations

import pytest

from tests.utils.clients import api_client
from tests.utils.jobs import submit, wait_for
from tests.utils.models import _registered, digit_png
from tests.utils.shapes import shapes_zip
from tests.utils.tables import linear_csv

pytestmark = pytest.mark.service

IMAGES, TABLE = "priv-shapes", "priv-plane"


@pytest.fixture(scope="module")
def alice(api_url, make_key):
    with api_client(api_url, make_key("alice-private"), timeout=120) as c:
        yield c


@pytest.fixture(scope="module")
def bob(api_url, make_key):
    with api_client(api_url, make_key("bob-private"), timeout=120) as c:
        yield c


@pytest.fixture(scope="module")
def alices(alice, worker) -> dict:
    """Alice's two uploads, a 1-epoch job on each, and the image job's model version."""
    for name, data, filename in ((IMAGES, shapes_zip(per_class=12), "s.zip"), (TABLE, linear_csv(n=80), "p.csv")):
        made = alice.post("/v1/datasets", data={"name": name}, files={"file": (filename, data, "application/octet-stream")})
        assert made.status_code == 201, made.text
    image_job = submit(alice, {"model": "cnn", "dataset": IMAGES,
                               "hyperparameters": {"image_size": 16, "epochs": 1, "batch_size": 8}})
    table_job = submit(alice, {"model": "linear_regression", "dataset": TABLE, "hyperparameters": {"epochs": 1}})
    for job in (image_job, table_job):
        assert wait_for(alice, job["id"], timeout_s=300)["status"] == "succeeded"
    return {"image_job": image_job["id"], "table_job": table_job["id"], "version": _registered(alice, image_job)}


def _routes(alices: dict) -> list[tuple[str, str, dict]]:
    """(method, path, request kwargs) of every route that reaches something derived from alice's uploads."""
    model_id, image_job, table_job = alices["version"]["id"], alices["image_job"], alices["table_job"]
    image = {"files": [("files", ("d.png", digit_png()))]}
    routes = [("GET", f"/v1/models/{model_id}", {}),
              ("GET", f"/v1/models/{model_id}/export", {"params": {"format": "torchscript"}}),
              ("GET", f"/v1/models/{model_id}/export", {"params": {"format": "onnx"}}),
              ("POST", f"/v1/models/{model_id}/promote", {}),
              ("GET", "/v1/models/serving", {"params": {"dataset": IMAGES}}),
              ("POST", f"/v1/predict/{IMAGES}", image),
              ("POST", f"/v1/predict/{IMAGES}", {**image, "params": {"model_id": model_id}}),
              ("POST", "/v1/predict/mnist", {**image, "params": {"model_id": model_id}}),
              ("POST", f"/v1/predict/{TABLE}/rows", {"json": {"rows": [[1.0, 2.0]]}}),
              ("GET", "/v1/plots/compare.png", {"params": {"jobs": [image_job]}})]
    routes += [("GET", f"/v1/jobs/{job}/plots/{plot}.png", {})
               for job in (image_job, table_job) for plot in ("loss", "metric", "confusion_matrix", "mistakes")]
    return routes


def test_every_route_to_a_private_uploads_models_plots_and_predictions_is_404_for_another_user(alices, alice, bob):
    for method, path, kwargs in _routes(alices):
        answer = bob.request(method, path, **kwargs)
        assert answer.status_code == 404, (method, path, answer.status_code, answer.text)
        assert "alice-private" not in answer.text, (path, answer.text)  # nothing says whose it is


def test_the_owner_reaches_the_same_routes(alices, alice):
    for method, path, kwargs in _routes(alices):
        if path.startswith("/v1/jobs/") and path.endswith(("confusion_matrix.png", "mistakes.png")):
            continue  # the table job has neither; the image job's may have no mistakes: 404s that name why
        if path == "/v1/predict/mnist":
            assert alice.request(method, path, **kwargs).status_code == 422  # her model, the wrong dataset
            continue
        answer = alice.request(method, path, **kwargs)
        assert answer.status_code == 200, (method, path, answer.status_code, answer.text)


def test_another_users_model_id_reads_like_an_unknown_one(alices, bob):
    model_id = alices["version"]["id"]
    hidden = bob.get(f"/v1/models/{model_id}").json()["detail"]
    unknown = bob.get("/v1/models/2147483000").json()["detail"]
    assert hidden == unknown.replace("2147483000", str(model_id))


def test_lists_history_and_catalog_show_another_user_nothing_of_the_upload(alices, alice, bob, client):
    model_id = alices["version"]["id"]
    for viewer, sees in ((bob, False), (alice, True), (client, True)):  # client: the admin
        assert (model_id in [m["id"] for m in viewer.get("/v1/models").json()["data"]]) is sees
        history = viewer.get("/v1/models/history", params={"dataset": IMAGES}).json()["data"]
        assert bool(history) is sees
        names = {d["name"] for d in viewer.get("/v1/catalog").json()["datasets"]}
        assert ({IMAGES, TABLE} <= names) is sees and ({IMAGES, TABLE} & names == set()) is not sees
        listed = {d["name"] for d in viewer.get("/v1/datasets").json()["data"]}
        assert ({IMAGES, TABLE} <= listed) is sees
    assert bob.get("/v1/models", params={"dataset": IMAGES}).json()["data"] == []


def test_only_the_owner_or_an_admin_changes_a_private_uploads_serving(alices, alice, bob, client):
    at = alice.get("/v1/models/history", params={"dataset": IMAGES}).json()["data"][-1]["at"]
    assert bob.post("/v1/models/rollback", json={"dataset": IMAGES, "at": at}).status_code == 404
    assert alice.post("/v1/models/rollback", json={"dataset": IMAGES, "at": at}).status_code == 200
    assert alice.post(f"/v1/models/{alices['version']['id']}/promote").status_code == 200
    assert client.post(f"/v1/models/{alices['version']['id']}/promote").status_code == 200
