"""A large CSV upload is parsed away from the API's event loop: other requests are answered meanwhile."""
from __future__ import annotations

import statistics
import threading
import time

import httpx
import pytest


pytestmark = [pytest.mark.service, pytest.mark.slow]

ROWS, FEATURES = 100_000, 20


def wide_csv(rows: int, features: int) -> bytes:
    """`features` numeric columns and a numeric target: 2M cells, whose tensor took 0.5 s under the GIL."""
    header = ",".join([f"x{i}" for i in range(features)] + ["target"])
    line = ",".join(f"{(i * 37 % 1000) / 1000:.3f}" for i in range(features))
    return (header + "\n" + "".join(f"{line},{r % 1000 / 10:.1f}\n" for r in range(rows))).encode()


def _probe(url: str, stop: threading.Event) -> list[float]:
    """Latencies of an `async def` route (no threadpool, no database): what the event loop itself owes."""
    out = []
    with httpx.Client(base_url=url, timeout=30) as c:
        while not stop.is_set():
            started = time.perf_counter()
            assert c.get("/docs").status_code == 200
            out.append(time.perf_counter() - started)
            time.sleep(0.01)
    return out


def _during(url: str, work) -> list[float]:
    stop, seen = threading.Event(), []
    prober = threading.Thread(target=lambda: seen.extend(_probe(url, stop)))
    prober.start()
    try:
        work()
    finally:
        stop.set()
        prober.join()
    return seen


def test_a_100k_row_csv_upload_does_not_stall_the_event_loop(client, api_url):
    data = wide_csv(ROWS, FEATURES)
    quiet = _during(api_url, lambda: time.sleep(2))

    def upload():
        response = client.post("/v1/datasets", data={"name": "loop-100k"},
                               files={"file": ("t.csv", data, "text/csv")}, timeout=120)
        assert response.status_code == 201, response.text
        assert response.json()["samples"] == ROWS

    busy = _during(api_url, upload)
    client.delete("/v1/datasets/loop-100k")
    print(f"\n/docs during a {ROWS:,}-row, {FEATURES + 1}-column upload: n={len(busy)} p50 {statistics.median(busy) * 1e3:.1f} ms, "
          f"max {max(busy) * 1e3:.0f} ms (quiet: p50 {statistics.median(quiet) * 1e3:.1f} ms, "
          f"max {max(quiet) * 1e3:.0f} ms)")
    # parsed in a thread, the upload held the loop 0.2-0.5 s several times (the GIL: the garbage
    # collector's passes over 2M cells, a tensor conversion); a loaded 2-core box makes one odd spike
    assert sorted(busy)[-2] < 0.2, (sorted(busy)[-3:], max(quiet))
