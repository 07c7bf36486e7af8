"""cats_dogs: decode once, cache uint8 tensors keyed by content, invalidate on any file change."""
from __future__ import annotations

import warnings

import pytest
import torch
from PIL import Image

from ml.data import clear_memo, describe_dataset, load_dataset
from ml.data import photos
from ml.errors import DatasetFilesMissing


def _load(data_dir, cache_dir, **kwargs):
    clear_memo()  # a new worker process: only the on-disk cache can help
    before = photos.decode_count
    bundle = load_dataset("cats_dogs", data_dir, cache_dir=cache_dir, **kwargs)
    return bundle, photos.decode_count - before


def test_first_load_decodes_every_photo_then_never_again(photo_tree, tmp_path):
    cache = tmp_path / "cache"
    first, decoded = _load(photo_tree, cache)
    assert decoded == 20
    assert (first.task, first.input_kind, first.classes, first.input_shape) == (
        "binary", "photos", ["cat", "dog"], (3, 64, 64))
    assert first.image_size == 64 and len(first.mean) == 3 and len(first.std) == 3
    assert (len(first.train), len(first.val), len(first.test)) == (16, 2, 2)
    assert first.train.y.dtype == torch.int64 and set(first.train.y.tolist()) == {0, 1}
    [cache_file] = (cache / "photos").glob("cats_dogs-64px-*.pt")

    second, decoded = _load(photo_tree, cache)
    assert decoded == 0
    assert torch.equal(first.train.x, second.train.x) and second.checksum == first.checksum
    assert list((cache / "photos").glob("*.pt")) == [cache_file]


def test_the_cache_holds_the_eval_transform_output(photo_tree, tmp_path):
    bundle, _ = _load(photo_tree, tmp_path / "cache", image_size=32, val_fraction=0.0)
    [cache_file] = (tmp_path / "cache" / "photos").glob("*.pt")
    cached = torch.load(cache_file, weights_only=True)
    assert cached["x"].dtype == torch.uint8 and cached["x"].shape == (20, 3, 32, 32)
    path = photo_tree / "cats-dogs" / cached["files"][0]
    with Image.open(path) as image:
        expected = photos.photo_to_uint8(image, 32)
    assert torch.equal(cached["x"][0], expected)


def test_changing_one_file_invalidates(photo_tree, tmp_path, make_photo):
    cache = tmp_path / "cache"
    first, _ = _load(photo_tree, cache)
    make_photo(photo_tree / "cats-dogs" / "dog" / "dog.3.jpg", seed=999)  # same name, new bytes
    second, decoded = _load(photo_tree, cache)
    assert decoded == 20 and second.checksum != first.checksum
    assert len(list((cache / "photos").glob("*.pt"))) == 1  # the stale cache was removed


def test_adding_and_removing_files_invalidates(photo_tree, tmp_path, make_photo):
    cache = tmp_path / "cache"
    first, _ = _load(photo_tree, cache)
    make_photo(photo_tree / "cats-dogs" / "cat" / "cat.new.jpg", seed=1234)
    added, decoded = _load(photo_tree, cache)
    assert decoded == 21 and added.checksum != first.checksum
    (photo_tree / "cats-dogs" / "cat" / "cat.new.jpg").unlink()
    removed, decoded = _load(photo_tree, cache)
    assert decoded == 20 and removed.checksum == first.checksum


def test_each_image_size_has_its_own_cache(photo_tree, tmp_path):
    cache = tmp_path / "cache"
    small, decoded_small = _load(photo_tree, cache, image_size=32)
    big, decoded_big = _load(photo_tree, cache, image_size=48)
    assert (decoded_small, decoded_big) == (20, 20)
    assert small.train.x.shape[1:] == (3, 32, 32) and big.train.x.shape[1:] == (3, 48, 48)
    assert _load(photo_tree, cache, image_size=32)[1] == 0


def test_unreadable_files_are_skipped_with_a_warning(photo_tree, tmp_path):
    (photo_tree / "cats-dogs" / "cat" / "broken.jpg").write_bytes(b"this is not a jpeg")
    with pytest.warns(UserWarning, match=r"skipped 1 unreadable image.*cat/broken\.jpg: cannot identify"):
        bundle, _ = _load(photo_tree, tmp_path / "cache")
    assert len(bundle.train) + len(bundle.val) + len(bundle.test) == 20
    assert bundle.extra["skipped_files"][0].startswith("cat/broken.jpg")


def test_a_damaged_cache_is_rebuilt(photo_tree, tmp_path):
    cache = tmp_path / "cache"
    _load(photo_tree, cache)
    [cache_file] = (cache / "photos").glob("*.pt")
    cache_file.write_bytes(b"garbage")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, decoded = _load(photo_tree, cache)
    assert decoded == 20


def test_missing_class_folder(photo_tree, tmp_path):
    for path in (photo_tree / "cats-dogs" / "dog").iterdir():
        path.unlink()
    (photo_tree / "cats-dogs" / "dog").rmdir()
    with pytest.raises(DatasetFilesMissing, match=r"missing dog/ in .*cats-dogs"):
        load_dataset("cats_dogs", photo_tree, cache_dir=tmp_path / "cache")
    info = describe_dataset("cats_dogs", photo_tree)
    assert info["present"] is False and info["missing"] == ["dog/"]


def test_exif_orientation_is_applied(tmp_path):
    # stored landscape: top half red, bottom half blue; EXIF 6 says "turn 90° clockwise to view",
    # so the upright photo has blue on the left and red on the right
    image = Image.new("RGB", (40, 20), "blue")
    image.paste((255, 0, 0), (0, 0, 40, 10))
    exif = image.getexif()
    exif[0x0112] = 6
    path = tmp_path / "rotated.jpg"
    image.save(path, exif=exif, quality=95)
    x = photos.decode_photo(path, 16).int()
    left, right = x[:, :, :4], x[:, :, -4:]
    assert right[0].float().mean() > 200 and right[2].float().mean() < 60  # red
    assert left[2].float().mean() > 200 and left[0].float().mean() < 60  # blue
