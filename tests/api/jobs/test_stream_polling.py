"""A job's event stream reads SQL when its live channel goes quiet or skips an epoch, not on a clock."""
from __future__ import annotations

import json

import anyio

from api.jobs.events import _JobStream
from api.jobs.live import LiveEvent
from core.settings import Settings


def _message(kind: str, data: dict) -> LiveEvent:
    return LiveEvent(kind, data, json.dumps(data))


def test_an_epoch_message_past_the_next_one_means_one_was_lost():
    stream = _JobStream("j", live=None, settings=Settings(database_url="sqlite://"), stopping=anyio.Event())
    stream.sent_epochs = 2
    assert not stream._skips_an_epoch(_message("epoch", {"epoch": 3}))
    assert stream._skips_an_epoch(_message("epoch", {"epoch": 5}))  # 3 and 4 are in SQL
    assert not stream._skips_an_epoch(_message("progress", {"epoch": 9, "batch": 1}))
    assert not stream._skips_an_epoch(None)
