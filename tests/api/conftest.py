"""Fixtures shared by the API tests."""
from __future__ import annotations

import httpx
import pytest


@pytest.fixture(scope="module")
def api(api_url, worker):
    """An HTTP client on the API under test, with a worker consuming jobs."""
    with httpx.Client(base_url=api_url, timeout=60) as c:
        yield c
