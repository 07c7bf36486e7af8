"""Ids by unambiguous prefix over HTTP and in the CLI: 200 for one match, 409 listing several, 404 naming it."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from core.db import session_scope
from core.orm import EpochMetric, Job, JobStatus
from tests.utils.clients import api_client
from tests.utils.jobs import read_events

pytestmark = pytest.mark.service

TAIL = "-4e2d-8c3b-0123456789ab"
ONE, TWINS = f"5ca1ab1e-0001{TAIL}", [f"5ca1ab1e-1000{TAIL}", f"5ca1ab1e-1001{TAIL}"]


@pytest.fixture(scope="module")
def jobs(database_url):
    with session_scope(database_url) as session:
        for job_id in (ONE, *TWINS):
            session.add(Job(id=job_id, model="mlp", dataset="mnist", seed=0, owner="prefix-owner",
                            status=JobStatus.succeeded, best_epoch=1,
                            config={"model": "mlp", "dataset": "mnist", "hyperparameters": {"epochs": 1}},
                            epoch_metrics=[EpochMetric(epoch=1, train_loss=0.5, val_accuracy=0.9, lr=0.1,
                                                       seconds=1.0, samples_per_second=100.0)]))
        session.commit()


def test_a_prefix_answers_for_the_one_job_it_starts(client, jobs):
    assert client.get("/v1/jobs/5ca1ab1e-0").json()["id"] == ONE
    assert client.get("/v1/jobs/5CA1AB1E-0001/metrics").json()["job_id"] == ONE
    assert client.get("/v1/jobs/5ca1ab1e-0/plots/loss.png").headers["content-type"] == "image/png"
    events = read_events(client, "5ca1ab1e-00", timeout_s=30)  # the stream follows the full id
    assert events[-1][0] == "status" and events[-1][1]["status"] == "succeeded"
    assert [e for kind, e in events if kind == "epoch"][0]["epoch"] == 1


def test_an_ambiguous_prefix_is_409_listing_the_matches(client, jobs):
    answer = client.get("/v1/jobs/5ca1ab1e-1")
    assert answer.status_code == 409
    assert answer.json()["detail"] == (f"job id prefix '5ca1ab1e-1' matches 2 jobs ({TWINS[0]}, {TWINS[1]}); "
                                       "give more characters")
    assert client.get("/v1/jobs/5ca1ab1e/events").status_code == 409  # before any stream starts


def test_unknown_and_others_prefixes_are_404_naming_them(client, jobs, make_key):
    answer = client.get("/v1/jobs/5ca1ab1f")
    assert answer.status_code == 404 and answer.json()["detail"].startswith("job '5ca1ab1f' not found")
    assert client.get("/v1/sweeps/5ca1ab1e").status_code == 404
    with api_client(client.base_url, make_key("prefix-stranger")) as stranger:
        assert stranger.get("/v1/jobs/5ca1ab1e-1").status_code == 404  # not 409: others' ids never listed


def test_the_cli_takes_a_prefix_and_prints_the_full_id(api_url, admin_key, jobs):
    env = {**os.environ, "TRAINSERVE_URL": api_url, "TRAINSERVE_API_KEY": admin_key, "COLUMNS": "160"}
    run = subprocess.run([sys.executable, "-m", "client", "watch", "5ca1ab1e-0"], env=env, capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 0, run.stderr + run.stdout
    assert f"job {ONE} succeeded" in " ".join(run.stdout.split())
    ambiguous = subprocess.run([sys.executable, "-m", "client", "watch", "5ca1ab1e-1"], env=env, capture_output=True,
                               text=True, timeout=60)
    assert ambiguous.returncode != 0 and TWINS[1] in " ".join(ambiguous.stderr.split())
