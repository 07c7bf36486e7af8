"""Nobody but an admin changes what a built-in dataset serves: a user's job on mnist, even with a better
validation score, leaves every other user's predictions alone; an admin's takes over. On a private stack
(its own database, Redis, API and worker), so mnist's registry starts empty whatever else the suite trained."""
from __future__ import annotations

import time

import pytest

from tests.utils.clients import api_client
from tests.utils.jobs import submit, wait_for
from tests.utils.models import _registered, digit_png, wait_until_serving
from tests.utils.stack import Stack

pytestmark = pytest.mark.service

WEAK = {"model": "mlp", "dataset": "mnist",
        "hyperparameters": {"epochs": 1, "max_train_samples": 256, "batch_size": 64, "hidden_sizes": [16]}}
STRONG = {"model": "mlp", "dataset": "mnist",
          "hyperparameters": {"epochs": 2, "max_train_samples": 4096, "batch_size": 64, "hidden_sizes": [64]}}


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    s = Stack(tmp_path_factory.mktemp("serving-stack"))
    s.start_redis()
    s.start_api()
    s.start_worker("serving@%h")
    yield s
    s.close()


def _user(stack: Stack, admin, owner: str):
    made = admin.post("/v1/keys", json={"owner": owner, "role": "user"})
    assert made.status_code == 201, made.text
    return api_client(stack.url, made.json()["key"], timeout=60)


def _train(client, request: dict) -> dict:
    job = submit(client, request)
    assert wait_for(client, job["id"], timeout_s=300)["status"] == "succeeded"
    return _registered(client, job)


def _served_id(client) -> int:
    answer = client.post("/v1/predict/mnist", files=[("files", ("d.png", digit_png()))])
    assert answer.status_code == 200, answer.text
    return answer.json()["model"]["id"]


def test_a_users_better_job_does_not_change_what_others_are_served_an_admins_does(stack):
    with stack.client() as admin, _user(stack, admin, "carol") as carol, _user(stack, admin, "dave") as dave:
        first = _train(admin, WEAK)
        wait_until_serving(dave, "mnist", first["id"])

        users = _train(carol, STRONG)
        assert users["val_accuracy"] > first["val_accuracy"]  # better, and scored on the whole split
        assert users["val_samples"] == users["val_split_size"] and not users["auto_promotable"]
        time.sleep(1.5)  # past the API's registry check interval (1 s): a change would show now
        assert _served_id(dave) == _served_id(carol) == first["id"]
        assert admin.get("/v1/models/serving", params={"dataset": "mnist"}).json()["model"]["id"] == first["id"]
        refused = carol.post(f"/v1/models/{users['id']}/promote")
        assert refused.status_code == 403 and "admin" in refused.json()["detail"]
        assert carol.post("/v1/models/rollback", json={"dataset": "mnist", "at": users["created_at"]}).status_code == 403

        admins = _train(admin, {**STRONG, "hyperparameters": {**STRONG["hyperparameters"], "seed": 2}})
        assert admins["auto_promotable"] and admins["val_accuracy"] > first["val_accuracy"]
        wait_until_serving(dave, "mnist", admins["id"])
        assert _served_id(carol) == admins["id"]
