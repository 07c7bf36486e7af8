"""Sweeps over real HTTP with a real worker: a grid to a leaderboard and a registered best, reuse,
ASHA early stopping, cancel, events, and search spaces refused naming their parameter."""
from __future__ import annotations

import time

import pytest

from tests.utils.jobs import read_stream
from tests.utils.sweeps import TINY_TRIAL, create_sweep, wait_sweep

pytestmark = pytest.mark.service

GRID = {"model": "mlp", "dataset": "mnist", "hyperparameters": TINY_TRIAL,
        "search": {"grid": {"lr": [0.1, 0.01], "batch_size": [32, 64]}}, "max_parallel": 2}


@pytest.mark.slow
def test_a_grid_finishes_with_a_leaderboard_and_a_registered_best_and_reuse_takes_its_results(api):
    sweep = create_sweep(api, GRID)
    assert sweep["total"] == 4 and len(sweep["trials"]) == 4
    assert sweep["counts"].get("waiting") == 2  # max_parallel: two wait in SQL for a slot
    done = wait_sweep(api, sweep["id"])
    assert done["status"] == "succeeded" and done["counts"] == {"succeeded": 4}
    metrics = [t["metric"] for t in done["trials"]]
    assert metrics == sorted(metrics, reverse=True) and None not in metrics
    assert {tuple(sorted(t["hyperparameters"].items())) for t in done["trials"]} == {
        (("batch_size", b), ("lr", lr)) for lr in (0.1, 0.01) for b in (32, 64)}
    best = done["best"]
    assert best["job_id"] == done["trials"][0]["job_id"]
    model = api.get(f"/v1/models/{done['best_model_id']}").json()
    assert model["job_id"] == best["job_id"]
    job = api.get(f"/v1/jobs/{best['job_id']}").json()
    assert job["sweep_id"] == sweep["id"] and job["best"]["metric"]["value"] == pytest.approx(best["metric"])
    plot = api.get(f"/v1/sweeps/{sweep['id']}/plots/leaderboard.png")
    assert plot.status_code == 200 and plot.headers["content-type"] == "image/png"
    assert plot.content[:8] == b"\x89PNG\r\n\x1a\n" and "max-age" in plot.headers["cache-control"]
    assert api.get(f"/v1/sweeps/{sweep['id']}/plots/leaderboard.png",
                   headers={"If-None-Match": plot.headers["etag"]}).status_code == 304

    again = create_sweep(api, {**GRID, "reuse": True})
    assert again["status"] == "succeeded" and again["counts"] == {"succeeded": 4}  # nothing trained
    assert {t["reused_from"] for t in again["trials"]} == {t["job_id"] for t in done["trials"]}
    assert [t["metric"] for t in again["trials"]] == metrics
    copy = api.get(f"/v1/jobs/{again['best']['job_id']}").json()
    assert copy["reused_from"] == best["job_id"] and copy["attempts"] == []

    # a plain job may reuse too; a different seed is a different run and trains
    same = {"model": "mlp", "dataset": "mnist", "hyperparameters": {**TINY_TRIAL, **best["hyperparameters"]}}
    reused = api.post("/v1/jobs", json={**same, "reuse": True}).json()
    assert reused["status"] == "succeeded" and reused["reused_from"] == best["job_id"]
    assert reused["best"]["metric"] == job["best"]["metric"]
    fresh = api.post("/v1/jobs", json={**same, "hyperparameters": {**same["hyperparameters"], "seed": 1},
                                       "reuse": True}).json()
    assert fresh["status"] == "queued" and fresh["reused_from"] is None
    api.post(f"/v1/jobs/{fresh['id']}/cancel")


@pytest.mark.slow
def test_asha_stops_the_trials_that_lag_at_a_rung_and_keeps_their_checkpoints(api):
    sweep = create_sweep(api, {
        "model": "mlp", "dataset": "mnist", "hyperparameters": {**TINY_TRIAL, "epochs": 3},
        "search": {"grid": {"lr": [0.1, 0.0001]}}, "max_parallel": 1,
        "early_stopping": {"asha": {"grace_epochs": 1, "reduction_factor": 2}}})
    events = read_stream(api, f"/v1/sweeps/{sweep['id']}/events")
    done = wait_sweep(api, sweep["id"])
    assert done["status"] == "succeeded" and done["counts"] == {"succeeded": 1, "stopped": 1}
    winner, loser = done["trials"]
    assert winner["hyperparameters"]["lr"] == 0.1 and winner["status"] == "succeeded"
    stopped = api.get(f"/v1/jobs/{loser['job_id']}").json()
    assert stopped["status"] == "stopped" and stopped["error_type"] == "EarlyStopped"
    assert "ASHA" in stopped["error"] and stopped["progress"]["epoch"] < 3
    assert [r["epoch"] for r in api.get(f"/v1/jobs/{loser['job_id']}/metrics").json()["data"]] == [1]
    assert api.get(f"/v1/jobs/{loser['job_id']}/checkpoints").json()["count"] >= 1
    assert ("trial", "stopped") in {(kind, data.get("status")) for kind, data in events}
    # the leader is named as soon as a trial has a metric, not only at the end
    first_metric = next(n for n, (kind, data) in enumerate(events) if kind == "trial" and data["metric"] is not None)
    later = [data for kind, data in events[first_metric:] if kind == "status"]
    assert later and all(data["best_job_id"] for data in later), later
    assert later[-1]["best_job_id"] == winner["job_id"]
    assert events[-1][0] == "status" and events[-1][1]["status"] == "succeeded"


@pytest.mark.slow
def test_cancel_stops_every_trial(api):
    slow = {**TINY_TRIAL, "epochs": 30, "max_train_samples": 4096, "batch_size": 16}
    sweep = create_sweep(api, {**GRID, "hyperparameters": slow})
    deadline = time.monotonic() + 60
    while not any(t["status"] == "running" for t in api.get(f"/v1/sweeps/{sweep['id']}").json()["trials"]):
        assert time.monotonic() < deadline
        time.sleep(0.05)
    response = api.post(f"/v1/sweeps/{sweep['id']}/cancel")
    assert response.status_code == 200 and response.json()["status"] == "cancelled"
    done = wait_sweep(api, sweep["id"], timeout_s=60)
    assert done["status"] == "cancelled" and set(done["counts"]) == {"cancelled"}
    assert sum(1 for t in done["trials"] if t["job_id"] is None) == 2  # the waiting ones never became jobs
    assert api.post(f"/v1/sweeps/{sweep['id']}/cancel").status_code == 200  # twice is harmless


@pytest.mark.parametrize("search, field", [
    ({"grid": {"nonsense": [1, 2]}}, "search.grid.nonsense"),
    ({"grid": {"lr": [0.1, 50.0]}}, "search.grid.lr"),
    ({"grid": {"lr": []}}, "search.grid.lr"),
    ({"random": {"momentum": {"uniform": [0.5, 1.5]}}, "trials": 20}, "search.random.momentum"),
    ({"random": {"lr": {"normal": [0, 1]}}, "trials": 2}, "search.random.lr"),
    ({"grid": {"epochs": [500, 499], "lr": [0.1] * 10}}, "search"),  # 9,990 trial-epochs: too large
    ({"grid": {"image_size": [28, 64]}}, "search.grid.image_size"),  # mnist is 28 px: a trial would fail
])
def test_an_invalid_search_space_is_refused_naming_the_parameter(client, search, field):
    response = client.post("/v1/sweeps", json={"model": "mlp", "dataset": "mnist", "search": search})
    assert response.status_code == 422, response.text
    detail = response.json()["detail"]
    assert detail[0]["field"] == field, detail
    assert len(detail) <= 10


def test_an_unknown_sweep_is_a_404_naming_it(client):
    response = client.get("/v1/sweeps/no-such-sweep")
    assert response.status_code == 404 and "no-such-sweep" in response.json()["detail"]


def test_a_sweep_with_no_finished_epoch_has_no_leaderboard_plot_yet(client):
    assert "no-such-sweep" in client.get("/v1/sweeps/no-such-sweep/plots/leaderboard.png").json()["detail"]
    sweep = create_sweep(client, {**GRID, "hyperparameters": {**GRID["hyperparameters"], "epochs": 50}})
    response = client.get(f"/v1/sweeps/{sweep['id']}/plots/leaderboard.png")
    assert response.status_code == 404 and "no leaderboard yet" in response.json()["detail"]
    client.post(f"/v1/sweeps/{sweep['id']}/cancel")
