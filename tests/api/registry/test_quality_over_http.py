"""End to end over real HTTP with a real worker: a job trains a version (its training label counts recorded),
files are predicted with it, feedback is given, and the quality endpoint's counts match what was sent."""
from __future__ import annotations

import io
import time

import pytest
from PIL import Image

from tests.utils.models import digit_png, predict, train_versions

pytestmark = pytest.mark.service


def _blank_png() -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (64, 64), (255, 255, 255)).save(buf, format="PNG")
    return buf.getvalue()


def _quality_once_logged(client, model_id: int, sent: int, timeout_s: float = 15.0) -> dict:
    """The report once the log's writer has flushed every sent file's row (it batches every ~100 ms)."""
    deadline = time.monotonic() + timeout_s
    while True:
        report = client.get(f"/v1/models/{model_id}/quality", params={"window": "1h", "windows": 2}).json()
        if sum(w["requests"] for w in report["windows"]) >= sent:
            return report
        assert time.monotonic() < deadline, f"only {report} logged of {sent} files within {timeout_s}s"
        time.sleep(0.1)


def test_the_quality_endpoints_counts_match_what_was_sent(api):
    [version] = train_versions(api, 1)  # a fresh version: only this test predicts with it
    files = [(f"{d}.png", digit_png(d, seed=d)) for d in (0, 1, 2, 3, 7, 7)] + [("blank.png", _blank_png())]
    answers = []
    for chunk in (files[:4], files[4:]):  # two requests
        response = predict(api, "mnist", chunk, model_id=version["id"])
        assert response.status_code == 200, response.text
        answers += response.json()["predictions"]
    first = answers[0]
    given = api.post(f"/v1/predictions/{first['prediction_id']}/feedback", json={"label": first["label"]})
    assert given.status_code == 200, given.text
    report = _quality_once_logged(api, version["id"], len(files))
    windows = report["windows"]
    assert sum(w["requests"] for w in windows) == 7
    sent_labels: dict[str, int] = {}
    for answer in answers:
        if not answer.get("abstained"):
            sent_labels[answer["label"]] = sent_labels.get(answer["label"], 0) + 1
    logged_labels: dict[str, int] = {}
    for w in windows:
        for label, n in w["label_counts"].items():
            logged_labels[label] = logged_labels.get(label, 0) + n
    assert logged_labels == sent_labels and sum(sent_labels.values()) == 6  # the blank abstained: no label
    assert sum(round(w["abstain_rate"] * w["requests"]) for w in windows if w["requests"]) == 1
    assert sum(w["feedback"] for w in windows) == 1
    assert [w["feedback_accuracy"] for w in windows if w["feedback"]] == [1.0]
    # the engine reported the training split's counts and the registry kept them: the mix is compared
    assert sum(report["train_label_counts"].values()) == 512 and report["label_mix"].startswith("compared")
    assert all(w["drift"] is None for w in windows)  # 6 answered files: too few to judge
