"""Fixtures the worker tests share: each module builds its own `stack` (a private API, Redis and workers)."""
from __future__ import annotations

import pytest


@pytest.fixture
def api(stack):
    """An HTTP client of the module's stack, with its admin key."""
    with stack.client() as c:
        yield c
