"""Swapping the serving model while requests are in flight fails none of them."""
from __future__ import annotations

import threading
import time
from collections import Counter

import httpx
import pytest

from tests.utils.models import digit_png, predict, train_versions, wait_until_serving

pytestmark = pytest.mark.service


def test_swaps_under_concurrent_requests_fail_none(api_url, worker):
    with httpx.Client(base_url=api_url, timeout=60) as admin:
        a, b = train_versions(admin, 2)
        admin.post(f"/v1/models/{a['id']}/promote").raise_for_status()
        wait_until_serving(admin, "mnist", a["id"])

        statuses: Counter = Counter()
        served_by: Counter = Counter()
        stop = threading.Event()
        png = digit_png(3)

        def client_loop() -> None:
            with httpx.Client(base_url=api_url, timeout=60) as c:
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
