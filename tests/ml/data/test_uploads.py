"""Uploaded datasets: image folders and CSVs are checked, normalised, described and train like built-ins."""
from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from ml.config import resolve_config
from ml.data import get_dataset_spec, load_dataset, use_uploaded_datasets
from ml.data.uploads import UploadLimits, UploadedLookup, ingest_upload
from ml.errors import BadUpload, InvalidConfig
from ml.train import train
from tests.utils.shapes import SHAPES, shapes_zip
from tests.utils.tables import TRUE_B, TRUE_W, linear_csv


def ingest(tmp_path: Path, data: bytes, filename: str, **kwargs):
    source = tmp_path / "upload.bin"
    source.write_bytes(data)
    out = tmp_path / "dataset"
    out.mkdir(exist_ok=True)
    manifest = ingest_upload(source, filename=filename, kind=kwargs.pop("kind", None),
                             target=kwargs.pop("target", None), out_dir=out, **kwargs)
    return {**manifest, "sha256": hashlib.sha256(data).hexdigest(), "size_bytes": len(data)}, out


@pytest.fixture
def uploaded():
    """Register uploads in the registry the way the service does, by name -> (manifest, folder)."""
    stored: dict[str, tuple[dict, Path]] = {}
    use_uploaded_datasets(UploadedLookup(stored.get, lambda: list(stored)))
    yield stored
    use_uploaded_datasets(None)


def test_image_folder_is_described_and_refusals_listed(tmp_path):
    manifest, out = ingest(tmp_path, shapes_zip(per_class=6, extra={"circle/broken.png": b"not an image",
                                                                   "stray.txt": b"x"}), "shapes.zip")
    assert manifest["kind"] == "image_folder" and manifest["task"] == "classification"
    assert manifest["classes"] == [{"name": s, "count": 6} for s in sorted(SHAPES)]
    reasons = {r["file"]: r["reason"] for r in manifest["refused"]}
    assert "not an image" in reasons["circle/broken.png"] and reasons["stray.txt"] == "not inside a class folder"
    assert sorted(p.name for p in (out / "images").iterdir()) == ["c000", "c001", "c002"]
    assert not (out / "extracted").exists()


def test_too_few_classes_is_a_clear_refusal(tmp_path):
    with pytest.raises(BadUpload, match="found 1 class folder.*at least 2"):
        ingest(tmp_path, shapes_zip(per_class=6, only=("circle",)), "one.zip")


def test_too_few_images_in_a_class_is_a_clear_refusal(tmp_path):
    with pytest.raises(BadUpload, match="at least 5 readable images: 'circle' has 2"):
        ingest(tmp_path, shapes_zip(per_class=2), "small.zip")


def test_csv_rows_that_are_not_numbers_are_refused_by_line(tmp_path):
    manifest, _ = ingest(tmp_path, linear_csv(n=50, bad_lines=True), "table.csv")
    assert manifest["task"] == "regression" and manifest["columns"] == ["x1", "x2"]
    assert [r["line"] for r in manifest["refused"]] == [4, 6, 8]
    assert "'x2' is not a finite number" in manifest["refused"][0]["reason"]
    assert manifest["samples"] == 47


@pytest.mark.parametrize("data, words", [
    (b"", "empty"), (b"\xff\xfe\x00x", "not UTF-8"), (b"a,b\n1,2\n", "no target column 'target'"),
    (b"target\n1\n2\n", "at least one feature"),
])
def test_unusable_csvs_say_why(tmp_path, data, words):
    with pytest.raises(BadUpload, match=words):
        ingest(tmp_path, data, "t.csv")


def test_uploaded_csv_trains_linear_regression_and_recovers_the_coefficients(tmp_path, uploaded):
    manifest, out = ingest(tmp_path, linear_csv(n=400), "line.csv")
    uploaded["my_table"] = (manifest, out)
    assert get_dataset_spec("my_table").task == "regression"
    with pytest.raises(InvalidConfig, match="cnn cannot be trained on my_table"):
        resolve_config("cnn", "my_table", {})
    result = train(resolve_config("linear_regression", "my_table", {}), data_dir=tmp_path, out_dir=tmp_path / "run")
    w, b = result.extra["learned"]["weights"], result.extra["learned"]["bias"]
    assert max(abs(a - t) for a, t in zip(w, TRUE_W)) < 0.05 and abs(b - TRUE_B) < 0.05, (w, b)
    assert result.dataset_checksum == manifest["sha256"]


def test_uploaded_images_split_80_10_10_stratified_and_seeded(tmp_path, uploaded):
    manifest, out = ingest(tmp_path, shapes_zip(per_class=20), "shapes.zip")
    uploaded["my_shapes"] = (manifest, out)
    bundle = load_dataset("my_shapes", tmp_path, image_size=32, cache_dir=tmp_path / "cache")
    assert {k: len(getattr(bundle, k)) for k in ("train", "val", "test")} == {"train": 48, "val": 6, "test": 6}
    assert bundle.test.y.bincount().tolist() == [2, 2, 2] and bundle.classes == sorted(SHAPES)
    assert bundle.checksum == manifest["sha256"]
    again = load_dataset("my_shapes", tmp_path, image_size=32, cache_dir=tmp_path / "cache")
    assert (again.train.y == bundle.train.y).all()
    assert any((tmp_path / "cache" / "photos").glob("upload-*.pt"))  # the photo cache, keyed by content


def test_uploaded_csv_with_class_labels_trains_a_classifier_that_answers_rows(tmp_path, uploaded):
    import random

    from ml.inference.rows import RowPredictor

    rng = random.Random(0)
    lines = ["a,b,label"]
    for _ in range(300):
        a, b = rng.uniform(-1, 1), rng.uniform(-1, 1)
        lines.append(f"{a:.4f},{b:.4f},{int(a + b > 0)}")
    manifest, out = ingest(tmp_path, ("\n".join(lines) + "\n").encode(), "t.csv", target="label")
    assert manifest["task"] == "binary" and [c["name"] for c in manifest["classes"]] == ["0", "1"]
    uploaded["signs"] = (manifest, out)
    result = train(resolve_config("logistic_regression", "signs", {"lr": 0.5, "epochs": 20}),
                   data_dir=tmp_path, out_dir=tmp_path / "run")
    assert result.test.accuracy > 0.9
    predictor = RowPredictor.load(result.best_checkpoint)
    answers = predictor.predict([[0.9, 0.8], {"a": -0.7, "b": -0.9}])
    assert [a["label"] for a in answers] == ["1", "0"] and predictor.columns == ["a", "b"]
    with pytest.raises(BadUpload, match="row 0: 3 values"):
        predictor.predict([[1, 2, 3]])


def test_csv_class_names_in_the_target_make_a_classifier_and_odd_cells_are_refused(tmp_path):
    lines = ["length,width,species"] + [f"{1 + i % 3}.{i % 7},{2 + i % 2}.5,{'setosa' if i % 2 else 'virginica'}"
                                        for i in range(30)]
    lines[5] = "1.0,2.0,"  # line 6: no species
    lines[9] = "x,2.0,setosa"  # line 10: a feature that is not a number
    manifest, _ = ingest(tmp_path, ("\n".join(lines) + "\n").encode(), "iris.csv", target="species")
    assert manifest["task"] == "binary" and [c["name"] for c in manifest["classes"]] == ["setosa", "virginica"]
    assert [(r["line"], r["reason"]) for r in manifest["refused"]] == [
        (6, "column 'species' is empty"), (10, "column 'length' is not a finite number")]
    assert sum(c["count"] for c in manifest["classes"]) == manifest["samples"] == 28
