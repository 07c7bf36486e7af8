"""Progress fraction and ETA, as the API and the events report them."""
from __future__ import annotations

import pytest

from core.progress import eta_seconds, progress_fraction, progress_payload, resumed_fraction


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
                       "eta_seconds": 6.0, "samples_per_second": 1234.57, "note": None}


def test_a_step_before_the_first_epoch_reports_its_own_share_and_eta():
    # extracting features: 812 of 2002 photos done at 10 photos/s, whatever the attempt's elapsed time
    payload = progress_payload(epoch=0, epochs=30, batch=812, batches=2002, samples_per_second=10.0,
                               elapsed_s=500.0, note="extracting features 812/2002")
    assert payload == {"epoch": 0, "epochs": 30, "batch": 812, "batches": 2002, "fraction": 0.4056,
                       "eta_seconds": 119.0, "samples_per_second": 10.0, "note": "extracting features 812/2002"}
    started = progress_payload(epoch=0, epochs=30, batch=0, batches=2002, samples_per_second=0.0, elapsed_s=1.0,
                               note="extracting features 0/2002")
    assert (started["fraction"], started["eta_seconds"]) == (0.0, None)  # no rate yet, no ETA


def test_a_resumed_attempt_estimates_from_its_own_pace():
    # resumed after 2 of 4 epochs, 10 s in and now at 75%: 25% took 10 s, 25% remain
    assert eta_seconds(10.0, 0.75, start_fraction=0.5) == pytest.approx(10.0)
    assert eta_seconds(10.0, 0.5, start_fraction=0.5) is None
    assert resumed_fraction(2, 4) == 0.5 and resumed_fraction(None, 4) == 0.0
