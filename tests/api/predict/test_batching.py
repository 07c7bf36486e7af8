"""PredictBatcher with a real model, real threads and a real event loop: each request its own answers."""
from __future__ import annotations

import asyncio
import io
import random
import time

import pytest
import torch

from api.predict.batching import BATCH_REQUESTS, ImageLimits, PredictBatcher
from api.predict.errors import UnreadableFile
from ml.checkpoint import save_checkpoint
from ml.config import resolve_config
from ml.inference import Predictor
from ml.models import build_model, output_kind
from tests.utils.models import digit_png

MNIST = {"name": "mnist", "task": "classification", "classes": list("0123456789"), "input_shape": [1, 28, 28],
         "input_kind": "grayscale", "image_size": None, "mean": [0.13], "std": [0.31]}
LIMITS = ImageLimits(max_bytes=10**6, max_pixels=10**7)


@pytest.fixture(scope="module")
def predictor(tmp_path_factory) -> Predictor:
    config = resolve_config("cnn", "mnist", {})
    torch.manual_seed(0)
    model = build_model(config, MNIST["input_shape"], 10)
    path = tmp_path_factory.mktemp("batcher") / "epoch-001.pt"
    save_checkpoint(path, {"model_state": model.state_dict(), "optimizer_state": {}, "epoch": 1, "rng": {},
                           "config": config.model_dump(), "metrics": [], "best": {}, "dataset": MNIST,
                           "output": output_kind(config)})
    return Predictor.load(path)


def _files(pngs: list[bytes]):
    return [(f"{i}.png", io.BytesIO(p)) for i, p in enumerate(pngs)]


def _count() -> float:
    for sample in BATCH_REQUESTS.collect()[0].samples:
        if sample.name.endswith("_count"):
            return sample.value
    return 0.0


def test_concurrent_requests_share_forwards_and_each_gets_its_own_answers_in_order(predictor):
    batcher = PredictBatcher(predictor, limits=LIMITS, max_images=16, max_wait_s=0.002)
    uploads = [[digit_png(random.Random(r).randrange(10), seed=r * 10 + k) for k in range(1 + r % 3)]
               for r in range(30)]
    alone = [predictor.predict([_decoded(p) for p in pngs], top_k=10) for pngs in uploads]

    async def run_all():
        return await asyncio.gather(*(
            batcher.predict(_files(pngs), top_k=10, explain=False, render=lambda ps, r=r: (r, ps))
            for r, pngs in enumerate(uploads)))

    before = _count()
    results = asyncio.run(run_all())
    for r, (tag, got) in enumerate(results):
        assert tag == r and len(got) == len(uploads[r])
        for g, e in zip(got, alone[r]):
            assert g.class_index == e.class_index and g.confidence == pytest.approx(e.confidence, abs=1e-5)
    assert _count() - before < 30  # gathered: fewer forward passes than requests
    batcher.close()


def _decoded(png: bytes):
    from ml.inference import decode_upload

    return decode_upload(png, max_bytes=LIMITS.max_bytes, max_pixels=LIMITS.max_pixels)


def test_a_lone_request_never_waits(predictor):
    batcher = PredictBatcher(predictor, limits=LIMITS, max_images=16, max_wait_s=5.0)

    async def one():
        started = time.perf_counter()
        await batcher.predict(_files([digit_png()]), top_k=1, explain=False, render=len)
        return time.perf_counter() - started

    assert asyncio.run(one()) < 1.0  # the gathering wait (5 s) applies only under load
    batcher.close()


def test_a_bad_upload_fails_its_own_request_only(predictor):
    batcher = PredictBatcher(predictor, limits=LIMITS, max_images=16, max_wait_s=0.0)

    async def both():
        return await asyncio.gather(
            batcher.predict(_files([digit_png(), b"not an image"]), top_k=1, explain=False, render=len),
            batcher.predict(_files([digit_png()]), top_k=1, explain=False, render=len),
            return_exceptions=True)

    bad, good = asyncio.run(both())
    assert isinstance(bad, UnreadableFile) and bad.number == 2 and "not an image" in bad.reason
    assert good == 1
    batcher.close()


def test_a_closed_batcher_still_answers_a_request_that_held_it(predictor):
    batcher = PredictBatcher(predictor, limits=LIMITS, max_images=16, max_wait_s=0.0)
    batcher.close()
    time.sleep(0.2)  # the worker has stopped
    got = asyncio.run(batcher.predict(_files([digit_png()]), top_k=2, explain=True, render=lambda ps: ps))
    assert len(got[0].top_k) == 2 and got[0].input_png
