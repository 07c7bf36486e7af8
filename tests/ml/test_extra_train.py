"""Extra training rows (a job's feedback set): framed exactly as the predictor frames an upload, appended to
the training split only, and counted in the run's result."""
from __future__ import annotations

import random

import pytest
import torch

from ml.config import resolve_config
from ml.data import load_dataset
from ml.extra_train import append_extra_rows, label_folder
from ml.inference import Predictor, decode_upload
from ml.models import build_model, output_kind
from ml.train import dataset_record, train
from tests.ml.inference.drawn_digits import CANVASES, draw_digit, encode


def _drawn(digit: int, seed: int, fmt: str = "PNG") -> bytes:
    return encode(draw_digit(digit, random.Random(seed), CANVASES[seed % len(CANVASES)]), fmt)


def _feedback_folder(root, rows):
    for label, name, data in rows:
        (root / label_folder(label)).mkdir(parents=True, exist_ok=True)
        (root / label_folder(label) / name).write_bytes(data)
    return root


def test_label_folders_are_plain_names():
    assert label_folder("t-shirt/top") == "t-shirt_top"
    assert label_folder("7") == "7"


def test_rows_join_the_training_split_framed_like_the_predictor_frames_an_upload(tmp_path, data_dir):
    bundle = load_dataset("mnist", data_dir, max_train_samples=64)
    val, test = bundle.val.x.clone(), bundle.test.x.clone()
    seven, one = _drawn(7, 1), _drawn(1, 2, "JPEG")
    blank = encode(draw_digit(3, random.Random(0), CANVASES[0]).point(lambda _: 255))
    folder = _feedback_folder(tmp_path / "fb", [("7", "a.png", seven), ("1", "b.jpg", one),
                                                ("3", "blank.png", blank), ("cat", "c.png", seven)])

    assert append_extra_rows(bundle, folder) == 2
    assert len(bundle.train) == 66 and bundle.extra["sizes"]["train"] == 66
    assert bundle.train.y[-2:].tolist() == [1, 7]  # sorted by path: 1/ before 7/
    assert torch.equal(bundle.val.x, val) and torch.equal(bundle.test.x, test)  # never val or test
    reasons = {s["file"]: s["reason"] for s in bundle.extra["feedback_skipped"]}
    assert set(reasons) == {"3/blank.png", "cat/c.png"}, reasons

    # what the served model would see for the same bytes, normalised with the same statistics
    config = resolve_config("mlp", "mnist", {"hidden_sizes": [8]})
    record = dataset_record(bundle)
    model = build_model(config, record["input_shape"], len(record["classes"]))
    predictor = Predictor(model, dataset=record, config=config.model_dump(), output=output_kind(config),
                          device=torch.device("cpu"))
    served = [predictor.prepare(decode_upload(b, max_bytes=10**7, max_pixels=10**8)).pixels for b in (one, seven)]
    assert torch.allclose(bundle.train.x[-2:], predictor.normalise(torch.stack(served)))


def test_a_run_with_extra_rows_counts_them_in_its_result(tmp_path, data_dir, one_thread):
    folder = _feedback_folder(tmp_path / "fb", [("7", f"{i}.png", _drawn(7, i)) for i in range(5)])
    config = resolve_config("mlp", "mnist", {"epochs": 1, "max_train_samples": 128, "max_eval_samples": 64,
                                             "hidden_sizes": [16]})
    plain = train(config, data_dir=data_dir, out_dir=tmp_path / "plain")
    extra = train(config.model_copy(update={"extra_train_dir": str(folder)}), data_dir=data_dir,
                  out_dir=tmp_path / "extra")
    assert "feedback_rows" not in plain.extra
    assert extra.extra["feedback_rows"] == 5
    assert "extra_train_dir" not in extra.config  # a local folder is never part of the stored config


def test_extra_train_dir_is_not_a_hyperparameter():
    from ml.errors import InvalidConfig

    with pytest.raises(InvalidConfig, match="unknown hyperparameter 'extra_train_dir'"):
        resolve_config("mlp", "mnist", {"extra_train_dir": "/tmp"})


def test_photos_are_resized_and_cropped_as_served_and_a_slash_in_a_label_finds_its_folder(tmp_path):
    from PIL import Image, ImageDraw

    from ml.data.base import DatasetBundle, TensorSplit
    from ml.data.transforms import normalize, photo_to_uint8

    empty = TensorSplit(torch.zeros(0, 3, 32, 32), torch.zeros(0, dtype=torch.int64))
    bundle = DatasetBundle(name="closet", task="binary", input_kind="photos", classes=["t-shirt/top", "bag"],
                           input_shape=(3, 32, 32), train=empty, val=empty, test=empty, mean=[0.5, 0.4, 0.3],
                           std=[0.2, 0.2, 0.2], image_size=32, extra={"upload_framing": "photo"})
    photo = Image.new("RGB", (120, 80), (30, 90, 160))
    ImageDraw.Draw(photo).ellipse([30, 10, 90, 70], fill=(240, 220, 200))
    folder = _feedback_folder(tmp_path / "fb", [("t-shirt/top", "p.jpg", encode(photo, "JPEG"))])
    assert append_extra_rows(bundle, folder) == 1
    served = photo_to_uint8(decode_upload((folder / "t-shirt_top" / "p.jpg").read_bytes(), max_bytes=10**7,
                                          max_pixels=10**8), 32)
    assert bundle.train.y.tolist() == [0]
    assert torch.allclose(bundle.train.x, normalize(served.unsqueeze(0), bundle.mean, bundle.std))
