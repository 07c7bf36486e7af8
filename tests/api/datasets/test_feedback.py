"""A dataset's feedback set over real HTTP with a real worker: counts per label (yours; an admin's: all),
the zip that uploads back, and jobs that train on it (include_feedback: snapshot, count, reuse, 422s).

The prediction rows and their kept inputs are written straight into the service's database and artifact
store, as the prediction log does (its routes are another change's).
"""
from __future__ import annotations

import hashlib
import io
import random
import uuid
import zipfile

import pytest
from sqlalchemy import select

from core.artifacts import open_store
from core.errors import FeedbackSnapshotChanged
from core.feedback import snapshot_rows, take_snapshot
from core.orm import ModelVersion, Prediction, utcnow
from tests.ml.inference.drawn_digits import CANVASES, draw_digit, encode
from tests.utils.clients import api_client
from tests.utils.jobs import LONG_MNIST, TINY_MNIST, submit, wait_for
from tests.utils.tables import linear_csv

pytestmark = pytest.mark.service

SUFFIX = uuid.uuid4().hex[:6]


@pytest.fixture(scope="module")
def version_id(api, db_engine) -> int:
    """A registered model version to hang prediction rows on (a tiny mnist mlp, trained by the worker)."""
    job = wait_for(api, submit(api, TINY_MNIST)["id"], timeout_s=300)
    assert job["status"] == "succeeded", job.get("error")
    from sqlalchemy.orm import sessionmaker

    with sessionmaker(bind=db_engine)() as session:
        return session.scalar(select(ModelVersion.id).where(ModelVersion.job_id == job["id"]))


@pytest.fixture(scope="module")
def store(service_settings):
    return open_store(service_settings.artifact_store_url, service_settings)


@pytest.fixture(scope="module")
def log_row(db_engine, store, version_id, tmp_path_factory):
    """log_row(dataset, owner, label, data=..., kept=True, feedback=True) → a prediction row (and its kept input)."""
    from sqlalchemy.orm import sessionmaker

    folder = tmp_path_factory.mktemp("inputs")

    def add(dataset: str, owner: str, label: str | None, *, data: bytes | None = None, kept: bool = True,
            media_type: str = "image/png") -> str:
        data = data or encode(draw_digit(int(label or 0) % 10, random.Random(), CANVASES[0]))
        pid = str(uuid.uuid4())
        key = f"predictions/{pid}/input" if kept else None
        if kept:
            (folder / pid).write_bytes(data)
            store.put(key, folder / pid)
        with sessionmaker(bind=db_engine)() as session:
            session.add(Prediction(id=pid, model_version_id=version_id, dataset=dataset, owner=owner, label="0",
                                   confidence=0.9, top_k=[{"label": "0", "confidence": 0.9}], created_at=utcnow(),
                                   input_sha256=hashlib.sha256(data).hexdigest(), input_size=len(data),
                                   input_key=key, input_media_type=media_type if kept else None,
                                   feedback_label=label, feedback_by=owner if label else None,
                                   feedback_at=utcnow() if label else None))
            session.commit()
        return pid

    return add


@pytest.fixture(scope="module")
def alice(api_url, make_key, log_row):
    """A user with 6 sevens (one a JPEG) and 5 ones in mnist's feedback set, plus rows outside it."""
    owner = f"alice-{SUFFIX}"
    for i in range(6):
        fmt = "JPEG" if i == 0 else "PNG"
        log_row("mnist", owner, "7", data=encode(draw_digit(7, random.Random(i), CANVASES[i % 8]), fmt),
                media_type=f"image/{fmt.lower()}")
    for i in range(5):
        log_row("mnist", owner, "1", data=encode(draw_digit(1, random.Random(10 + i), CANVASES[i % 8])))
    log_row("mnist", owner, None)  # no feedback: not in the set
    log_row("mnist", owner, "3", kept=False)  # feedback without a kept input: nothing to train on
    with api_client(api_url, make_key(owner)) as client:
        yield client


@pytest.fixture(scope="module")
def bob(api_url, make_key, log_row):
    owner = f"bob-{SUFFIX}"
    log_row("mnist", owner, "7")
    with api_client(api_url, make_key(owner)) as client:
        yield client


def test_counts_are_the_callers_feedback_rows_per_label(alice, bob):
    body = alice.get("/v1/datasets/mnist/feedback").json()
    assert body["labels"] == [{"name": "1", "count": 5}, {"name": "7", "count": 6}]
    assert body["count"] == 11 and body["scope"] == "yours"
    assert body["download_url"] == "/v1/datasets/mnist/feedback.zip"
    assert bob.get("/v1/datasets/mnist/feedback").json()["labels"] == [{"name": "7", "count": 1}]
    assert alice.get("/v1/datasets/no-such-set/feedback").status_code == 404


def test_an_admin_counts_everyones_and_a_private_upload_is_its_owners(api, alice, bob, log_row):
    name = f"fb-private-{SUFFIX}"
    zipped = alice.get("/v1/datasets/mnist/feedback.zip").content
    assert bob.post("/v1/datasets", data={"name": name}, files={"file": ("f.zip", zipped)}).status_code == 201
    log_row(name, f"bob-{SUFFIX}", "7")
    log_row(name, f"bob-{SUFFIX}", "1")
    log_row(name, "someone-else", "1")
    assert alice.get(f"/v1/datasets/{name}/feedback").status_code == 404  # bob's upload: unknown to alice
    assert alice.get(f"/v1/datasets/{name}/feedback.zip").status_code == 404
    assert bob.get(f"/v1/datasets/{name}/feedback").json()["count"] == 2
    admin = api.get(f"/v1/datasets/{name}/feedback").json()
    assert admin["scope"] == "all" and admin["labels"] == [{"name": "1", "count": 2}, {"name": "7", "count": 1}]


def test_the_zip_is_the_upload_format_and_uploads_back(alice):
    response = alice.get("/v1/datasets/mnist/feedback.zip")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        names = archive.namelist()
        assert all(archive.read(n).startswith(b"\x89PNG") for n in names)  # the JPEG became a PNG
    assert sorted(n.split("/")[0] for n in names) == ["1"] * 5 + ["7"] * 6
    assert all(n.endswith(".png") and len(n.split("/")[1]) == 40 for n in names)  # <uuid>.png
    name = f"fb-roundtrip-{SUFFIX}"
    upload = alice.post("/v1/datasets", data={"name": name}, files={"file": ("feedback.zip", response.content)})
    assert upload.status_code == 201, upload.text
    assert upload.json()["classes"] == [{"name": "1", "count": 5}, {"name": "7", "count": 6}]
    assert upload.json()["refused_count"] == 0


def test_a_job_with_include_feedback_trains_on_its_snapshot_and_reuses_only_the_same_one(alice, log_row):
    request = {**TINY_MNIST, "include_feedback": True, "reuse": True}
    job = submit(alice, request)
    assert job["feedback"]["count"] == 11 and len(job["feedback"]["prediction_ids"]) == 11
    assert job["feedback"]["prediction_ids"] == sorted(job["feedback"]["prediction_ids"])
    done = wait_for(alice, job["id"], timeout_s=300)
    assert done["status"] == "succeeded", done.get("error")
    assert done["result"]["extra"]["feedback_rows"] == 11
    assert done["best"] is not None

    again = submit(alice, request)  # the same snapshot: the same data, so its result is reused
    assert again["reused_from"] == job["id"] and again["feedback"] == job["feedback"]

    log_row("mnist", f"alice-{SUFFIX}", "1")  # the set grew: a new snapshot, a new training
    grown = submit(alice, request)
    assert grown["reused_from"] is None and grown["feedback"]["count"] == 12
    assert grown["feedback"]["sha256"] != job["feedback"]["sha256"]
    assert wait_for(alice, grown["id"], timeout_s=300)["result"]["extra"]["feedback_rows"] == 12


def test_a_snapshot_whose_rows_changed_is_refused(db_session, alice):
    snapshot = take_snapshot(db_session, dataset="mnist", owner=f"alice-{SUFFIX}")
    assert len(snapshot_rows(db_session, job_id="j", snapshot=snapshot)) == snapshot["count"]
    row = db_session.get(Prediction, snapshot["prediction_ids"][0])
    before, row.feedback_label = row.feedback_label, "9"
    db_session.flush()
    with pytest.raises(FeedbackSnapshotChanged, match="label changed"):
        snapshot_rows(db_session, job_id="j", snapshot=snapshot)
    row.feedback_label = before
    db_session.commit()


@pytest.mark.parametrize("dataset", ["synthetic_linear", "csv"])
def test_include_feedback_on_a_table_dataset_is_a_422_naming_why(alice, dataset):
    if dataset == "csv":
        dataset = f"fb-table-{SUFFIX}"
        up = alice.post("/v1/datasets", data={"name": dataset}, files={"file": ("t.csv", linear_csv(60))})
        assert up.status_code == 201, up.text
    model = "linear_regression"
    response = alice.post("/v1/jobs", json={"model": model, "dataset": dataset, "include_feedback": True})
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert detail[0]["field"] == "include_feedback" and "image classification" in detail[0]["msg"]
    assert "regression" in detail[0]["msg"]


def test_include_feedback_without_feedback_and_a_folder_in_the_request_are_422s(api_url, make_key):
    with api_client(api_url, make_key(f"carol-{SUFFIX}")) as carol:
        response = carol.post("/v1/jobs", json={**TINY_MNIST, "include_feedback": True})
        assert response.status_code == 422 and "no feedback" in response.json()["detail"][0]["msg"]
        for body in ({**TINY_MNIST, "extra_train_dir": "/tmp"},
                     {**TINY_MNIST, "hyperparameters": {**TINY_MNIST["hyperparameters"], "extra_train_dir": "/tmp"}}):
            assert carol.post("/v1/jobs", json=body).status_code == 422


def test_a_job_whose_snapshot_changed_before_it_ran_fails_saying_so(api, api_url, make_key, log_row, db_engine):
    from sqlalchemy.orm import sessionmaker

    owner = f"dave-{SUFFIX}"
    ids = [log_row("mnist", owner, "7") for _ in range(2)]
    busy = submit(api, LONG_MNIST)
    wait_for(api, busy["id"], "running")  # the one worker is taken: the next job waits, queued
    with api_client(api_url, make_key(owner)) as dave:
        job = submit(dave, {**TINY_MNIST, "include_feedback": True})
        with sessionmaker(bind=db_engine)() as session:
            session.get(Prediction, ids[0]).feedback_label = "1"  # relabelled after the snapshot
            session.commit()
        api.post(f"/v1/jobs/{busy['id']}/cancel")
        failed = wait_for(dave, job["id"], timeout_s=300)
    assert failed["status"] == "failed" and failed["error_type"] == "FeedbackSnapshotChanged"
    assert "label changed" in failed["error"] and "submit the job again" in failed["error"]
