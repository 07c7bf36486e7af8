"""Plots over HTTP: PNGs drawn from SQL rows (also while a job runs), the mistakes grid, caching, 404s."""
from __future__ import annotations

import io
import time

import pytest
from PIL import Image

from tests.utils.jobs import TINY_MNIST, submit, wait_for

pytestmark = pytest.mark.service


def _png(response) -> Image.Image:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "image/png"
    return Image.open(io.BytesIO(response.content))


@pytest.fixture(scope="module")
def finished(api) -> dict:
    return wait_for(api, submit(api, {**TINY_MNIST, "name": "plots"})["id"], "succeeded")


@pytest.mark.parametrize("plot", ["loss", "metric", "confusion_matrix", "mistakes"])
def test_a_finished_job_has_every_plot_cached_for_a_day_and_revalidated_by_etag(api, finished, plot):
    url = f"/v1/jobs/{finished['id']}/plots/{plot}.png"
    first = api.get(url)
    image = _png(first)
    assert image.width >= 300 and image.height >= 200
    assert first.headers["cache-control"] == "private, max-age=86400"
    again = api.get(url, headers={"If-None-Match": first.headers["etag"]})
    assert again.status_code == 304 and again.content == b""


def test_the_mistakes_grid_shows_the_test_sets_most_confident_mistakes(api, finished):
    mistakes = finished["test_metrics"]["top_mistakes"]
    assert mistakes, "a 2-epoch mlp on 512 samples makes mistakes"
    image = _png(api.get(f"/v1/jobs/{finished['id']}/plots/mistakes.png")).convert("L")
    # ten 28x28 digits drawn in grey: far from a blank page
    assert sum(1 for n in image.histogram() if n) > 20


def test_curves_exist_while_a_job_runs_and_change_when_an_epoch_ends(api):
    job = submit(api, {**TINY_MNIST, "hyperparameters": {**TINY_MNIST["hyperparameters"], "epochs": 30}})
    try:
        wait_for(api, job["id"], "running")
        url = f"/v1/jobs/{job['id']}/plots/loss.png"
        early = api.get(url)
        _png(early)
        assert early.headers["cache-control"] == "no-cache"
        deadline = time.monotonic() + 60
        while api.get(f"/v1/jobs/{job['id']}/metrics").json()["count"] < 2:
            assert time.monotonic() < deadline, "no two epochs within 60 s"
            time.sleep(0.05)
        later = api.get(url, headers={"If-None-Match": early.headers["etag"]})
        _png(later)  # a new epoch is a new drawing, not a 304
        assert later.headers["etag"] != early.headers["etag"]
        missing = api.get(f"/v1/jobs/{job['id']}/plots/confusion_matrix.png")
        assert missing.status_code == 404
        assert "no confusion matrix yet (running)" in missing.json()["detail"]
        assert "when training succeeds" in missing.json()["detail"]
    finally:
        api.post(f"/v1/jobs/{job['id']}/cancel")


def test_404s_name_what_is_missing(api, finished):
    unknown_plot = api.get(f"/v1/jobs/{finished['id']}/plots/roc.png")
    assert unknown_plot.status_code == 404
    assert unknown_plot.json()["detail"] == "no plot named 'roc'; the plots are loss, metric, confusion_matrix, mistakes"
    unknown_job = api.get("/v1/jobs/nope/plots/loss.png")
    assert unknown_job.status_code == 404 and "'nope'" in unknown_job.json()["detail"]
    compare_unknown = api.get("/v1/plots/compare.png", params={"jobs": [finished["id"], "nope"]})
    assert compare_unknown.status_code == 404 and "'nope'" in compare_unknown.json()["detail"]


def test_compare_overlays_several_jobs(api, finished):
    other = wait_for(api, submit(api, {**TINY_MNIST, "hyperparameters": {**TINY_MNIST["hyperparameters"],
                                                                         "seed": 7}})["id"], "succeeded")
    response = api.get("/v1/plots/compare.png", params={"jobs": [finished["id"], other["id"]], "metric": "val_loss"})
    assert _png(response).width >= 400
    bad_metric = api.get("/v1/plots/compare.png", params={"jobs": [finished["id"]], "metric": "vibes"})
    assert bad_metric.status_code == 422 and bad_metric.json()["detail"][0]["field"] == "metric"
