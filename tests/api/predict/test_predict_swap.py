"""Swapping the serving model while requests are in flight fails none of them."""
from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from tests.utils.clients import api_client
from tests.utils.models import digit_png, predict, train_versions, wait_until_serving

pytestmark = pytest.mark.service


def test_swaps_under_concurrent_requests_fail_none(api_url, worker, admin_key):
    with api_client(api_url, admin_key) as admin:
        a, b = train_versions(admin, 2)
        admin.post(f"/v1/models/{a['id']}/promote").raise_for_status()
        wait_until_serving(admin, "mnist", a["id"])

        statuses: Counter = Counter()
        served_by: Counter = Counter()
        stop = threading.Event()
        png = digit_png(3)

        def client_loop() -> None:
            with api_client(api_url, admin_key) as c:
                while not stop.is_set():
                    response = predict(c, "mnist", [("3.png", png)])
                    statuses[response.status_code] += 1
                    if response.status_code == 200:
                        served_by[response.json()["model"]["id"]] += 1

        threads = [threading.Thread(target=client_loop) for _ in range(8)]
        for t in threads:
            t.start()
        try:
            for target in (b, a, b):  # three swaps while 8 clients keep asking
                time.sleep(0.8)
                admin.post(f"/v1/models/{target['id']}/promote").raise_for_status()
                wait_until_serving(admin, "mnist", target["id"])
            time.sleep(0.5)
        finally:
            stop.set()
            for t in threads:
                t.join(timeout=60)

    assert set(statuses) == {200}, statuses
    assert served_by[a["id"]] > 0 and served_by[b["id"]] > 0, served_by
    assert sum(statuses.values()) >= 20


def test_a_version_that_cannot_load_never_replaces_the_serving_one(api_url, worker, db_session, admin_key,
                                                                   service_settings):
    from core.orm import ModelVersion

    with api_client(api_url, admin_key) as api:
        good, broken = train_versions(api, 2)
        api.post(f"/v1/models/{good['id']}/promote").raise_for_status()
        wait_until_serving(api, "mnist", good["id"])
        key = db_session.get(ModelVersion, broken["id"]).checkpoint_path
        assert key.startswith("jobs/")  # a key in the store, never a host path
        (Path(service_settings.artifact_dir) / key).unlink()  # e.g. an operator cleaned up the artifacts folder

        api.post(f"/v1/models/{broken['id']}/promote").raise_for_status()
        deadline = time.monotonic() + 2.5  # past the API's registry check interval
        while time.monotonic() < deadline:
            response = predict(api, "mnist", [("3.png", digit_png(3))])
            assert response.status_code == 200, response.text
            assert response.json()["model"]["id"] == good["id"]

        explicit = predict(api, "mnist", [("3.png", digit_png(3))], model_id=broken["id"])
        assert explicit.status_code == 503
        assert f"model {broken['id']}'s checkpoint file is missing" in explicit.json()["detail"]
        api.post(f"/v1/models/{good['id']}/promote").raise_for_status()
