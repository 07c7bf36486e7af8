"""Two API processes on one Redis: the maintenance pass runs once per period between them (counted on each
one's /metrics), and a key's predict rate limit holds across both."""
from __future__ import annotations

import re
import time

import pytest

from core.db import session_scope
from core.keys import create_key
from core.orm import Role
from tests.utils.clients import api_client
from tests.utils.models import digit_png, predict
from tests.utils.stack import Stack

pytestmark = pytest.mark.service

INTERVAL_S = 0.5  # MAINTENANCE_INTERVAL_S of tests/utils/stack.py's FAST_LIFECYCLE


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    s = Stack(tmp_path_factory.mktemp("two-apis"), extra_env={"PREDICT_RATE_PER_S": "0.2", "PREDICT_BURST": "2"})
    s.start_redis()
    s.urls = [s.start_api(), s.start_api()]
    yield s
    s.close()


def _passes(stack: Stack) -> list[float]:
    """Each API process's count of maintenance passes it ran, read from its /metrics."""
    counts = []
    for url in stack.urls:
        with api_client(url, stack.key) as client:
            text = client.get("/metrics").text
        counts.append(float(re.search(r"^trainserve_maintenance_passes_total (\S+)$", text, re.M).group(1)))
    return counts


def test_the_maintenance_pass_runs_once_per_period_whatever_the_number_of_api_processes(stack):
    before, started = _passes(stack), time.monotonic()
    time.sleep(8)
    after, elapsed = _passes(stack), time.monotonic() - started
    ran = sum(after) - sum(before)
    periods = elapsed / INTERVAL_S
    # each process offers twice a period: without the per-period key they would run ~4 passes a period
    assert ran <= periods + 2, (before, after, periods)
    assert ran >= periods * 0.5, (before, after, periods)  # and periods are not skipped (a busy machine is slow)


def test_the_predict_rate_limit_holds_across_api_processes(stack):
    with session_scope(stack.database_url) as session:
        keys = [create_key(session, owner=f"r{i}", role=Role.user)[1] for i in range(2)]
    first, second = stack.urls
    with api_client(first, keys[0]) as a, api_client(second, keys[0]) as b, api_client(second, keys[1]) as other:
        answers = [predict(client, "mnist", [("7.png", digit_png())]) for client in (a, b, a, b)]
        assert [r.status_code == 429 for r in answers] == [False, False, True, True]  # one burst of 2 for both
        assert int(answers[3].headers["Retry-After"]) >= 1
        assert predict(other, "mnist", [("7.png", digit_png())]).status_code != 429  # another key's own bucket
