"""Fixtures shared by the API tests."""
from __future__ import annotations

import pytest

from tests.utils.clients import api_client


@pytest.fixture(scope="module")
def api(api_url, worker, admin_key):
    """An HTTP client on the API under test (admin key), with a worker consuming jobs."""
    with api_client(api_url, admin_key) as c:
        yield c
