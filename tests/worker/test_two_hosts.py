"""Two hosts sharing nothing but the database, Redis and an S3 server (SeaweedFS): the API and two workers,
each with its own VAR_DIR and cache. A job resumes on the other worker from the checkpoint in the store,
an upload trains on a worker, the API serves and downloads what a worker stored, DELETE leaves no object.
The database is SQLite, or PostgreSQL when TEST_DATABASE_URL names a server (`make test-postgres`).
"""
from __future__ import annotations

import hashlib
import time
import uuid

import boto3
import pytest

from tests.utils.databases import fresh_database
from tests.utils.jobs import submit, wait_for
from tests.utils.models import digit_png, predict
from tests.utils.seaweed import seaweed_s3
from tests.utils.stack import Stack
from tests.utils.tables import linear_csv
from tests.worker.test_crashes import CRASHY, assert_each_epoch_once, wait_mid_epoch

pytestmark = [pytest.mark.service, pytest.mark.slow, pytest.mark.postgres]

BUCKET, PREFIX = "trainserve", "artifacts"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "any", "AWS_SECRET_ACCESS_KEY": "any", "AWS_REGION": "us-east-1"}


@pytest.fixture(scope="module")
def s3(tmp_path_factory):
    with seaweed_s3(tmp_path_factory.mktemp("seaweed")) as endpoint:
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="any",
                              aws_secret_access_key="any")
        client.create_bucket(Bucket=BUCKET)
        yield endpoint, client


@pytest.fixture(scope="module")
def stack(tmp_path_factory, s3):
    """API and workers on SQLite, or on a fresh PostgreSQL database when TEST_DATABASE_URL names a server."""
    root = tmp_path_factory.mktemp("two-hosts")
    with fresh_database(tmp_path_factory.mktemp("two-hosts-db")) as database_url:
        s = Stack(root, extra_env={"ARTIFACT_STORE_URL": f"s3://{BUCKET}/{PREFIX}", "S3_ENDPOINT_URL": s3[0],
                                   **CREDENTIALS}, database_url=database_url)
        s.start_redis()
        s.start_api()  # VAR_DIR <root>/var: the API host's
        yield s
        s.close()  # before the database is dropped: its processes hold connections


def _host(stack: Stack, name: str) -> dict[str, str]:
    return {"VAR_DIR": str(stack.root / f"host-{name}")}


def _objects(s3, prefix: str) -> list[str]:
    listed = s3[1].list_objects_v2(Bucket=BUCKET, Prefix=f"{PREFIX}/{prefix}")
    return sorted(o["Key"][len(PREFIX) + 1:] for o in listed.get("Contents", []))


def test_a_job_killed_on_one_host_resumes_on_another_and_the_api_serves_its_model(stack, api, s3):
    a = stack.start_worker("host-a@test", env=_host(stack, "a"))
    job = submit(api, CRASHY)
    wait_mid_epoch(api, job["id"])
    stack.kill_tree(a)  # the machine is gone, with its disk
    b = stack.start_worker("host-b@test", env=_host(stack, "b"))
    staging = stack.root / "host-b" / "cache" / "staging" / "jobs"
    try:
        done = wait_for(api, job["id"], "succeeded", timeout_s=240)
        # B releases its staged copies just after it records the end: give it the moment before killing it
        deadline = time.monotonic() + 30
        while any(staging.iterdir()) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        stack.kill_tree(b)
    first, second = done["attempts"]
    assert second["worker"] == "host-b@test" and second["resumed_from_epoch"] >= 1
    assert_each_epoch_once(api, job["id"])
    assert not (stack.root / "host-b" / "artifacts").exists()  # B read A's checkpoint from the store
    assert list(staging.iterdir()) == []  # and released its copies
    assert f"jobs/{job['id']}/epoch-004.pt" in _objects(s3, f"jobs/{job['id']}/")

    checkpoints = api.get(f"/v1/jobs/{job['id']}/checkpoints").json()["data"]
    download = api.get(checkpoints[-1]["download_url"])
    assert download.status_code == 200 and hashlib.sha256(download.content).hexdigest() == checkpoints[-1]["sha256"]
    models = api.get("/v1/models", params={"dataset": "mnist"}).json()["data"]
    version = next(m for m in models if m["job_id"] == job["id"])
    answer = predict(api, "mnist", [("7.png", digit_png(7))], model_id=version["id"])
    assert answer.status_code == 200, answer.text
    assert api.get(f"/v1/models/{version['id']}/export", params={"format": "torchscript"}).status_code == 200
    assert api.get(f"/v1/jobs/{job['id']}/plots/loss.png").status_code == 200


def test_an_upload_through_the_api_trains_on_a_worker_and_delete_leaves_no_object(stack, api, s3):
    name = f"plane-{uuid.uuid4().hex[:6]}"
    uploaded = api.post("/v1/datasets", data={"name": name},
                        files={"file": ("plane.csv", linear_csv(), "text/csv")}, timeout=120)
    assert uploaded.status_code == 201, uploaded.text
    sha = uploaded.json()["sha256"]
    assert _objects(s3, f"datasets/{sha}/")
    a = stack.start_worker("host-a2@test", env=_host(stack, "a2"))
    try:
        done = wait_for(api, submit(api, {"model": "linear_regression", "dataset": name})["id"], timeout_s=240)
    finally:
        stack.kill_tree(a)
    assert done["status"] == "succeeded", done.get("error")
    assert api.post(f"/v1/predict/{name}/rows", json={"rows": [[1.0, 2.0]]}).status_code == 200
    assert _objects(s3, f"jobs/{done['id']}/")

    assert api.delete(f"/v1/jobs/{done['id']}").status_code == 204
    assert _objects(s3, f"jobs/{done['id']}/") == []
    assert api.delete(f"/v1/datasets/{name}").status_code == 204
    assert _objects(s3, f"datasets/{sha}/") == []
