"""Progress fraction and ETA, as the API and the events report them."""
from __future__ import annotations

import pytest

from core.progress import eta_seconds, progress_fraction, progress_payload


@pytest.mark.parametrize("epoch, epochs, batch, batches, expected", [
    (None, None, None, None, 0.0),
    (1, 4, 0, 10, 0.0),
    (1, 4, 5, 10, 0.125),
    (2, 4, 10, 10, 0.5),
    (2, 4, None, None, 0.5),  # an epoch reported at its end, without batch counters
    (4, 4, 10, 10, 1.0),
    (9, 4, 10, 10, 1.0),  # never past done
])
def test_fraction(epoch, epochs, batch, batches, expected):
    assert progress_fraction(epoch, epochs, batch, batches) == pytest.approx(expected)


def test_eta_scales_elapsed_time_by_what_is_left():
    assert eta_seconds(10.0, 0.25) == pytest.approx(30.0)
    assert eta_seconds(10.0, 1.0) == 0.0
    assert eta_seconds(0.0, 0.5) is None and eta_seconds(5.0, 0.0) is None


def test_payload_has_every_field_the_api_promises():
    payload = progress_payload(epoch=1, epochs=2, batch=5, batches=10, samples_per_second=1234.567, elapsed_s=2.0)
    assert payload == {"epoch": 1, "epochs": 2, "batch": 5, "batches": 10, "fraction": 0.25,
                       "eta_seconds": 6.0, "samples_per_second": 1234.57}
