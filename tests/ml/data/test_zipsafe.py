"""Hostile zips are refused before anything lands outside the destination folder."""
from __future__ import annotations

import io
import os
import zipfile
from pathlib import Path

import pytest

from ml.data.zipsafe import ZipLimits, safe_extract
from ml.errors import BadUpload, UploadTooLarge
from tests.utils.hostile_zips import hostile_zips
from tests.utils.shapes import shapes_zip

LIMITS = ZipLimits(max_files=50, max_total_bytes=2 << 20, max_ratio=100)
# the words each refusal must use: the right rule fired, not just any
REASONS = {"traversal": "outside", "nested_traversal": "outside", "backslash_traversal": "outside",
           "absolute": "absolute", "drive_letter": "absolute", "symlink": "symbolic link",
           "symlink_dir_then_file": "symbolic link", "ratio_bomb": "zip bomb", "total_size": "unpacks to",
           "too_many_files": "entries", "nested_zip": "nested", "zip_disguised_as_png": "nested",
           "not_utf8_name": "UTF-8", "duplicate_entry": "twice", "not_a_zip": "not a readable zip"}


OVER_A_CAP = {"ratio_bomb", "too_many_files", "total_size"}


def _tree(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


@pytest.mark.parametrize("case", sorted(hostile_zips(limits_total=LIMITS.max_total_bytes, max_files=50)))
def test_hostile_zip_is_refused_and_nothing_escapes(case, tmp_path):
    data = hostile_zips(limits_total=LIMITS.max_total_bytes, max_files=50)[case]
    outside = tmp_path / "outside"
    dest = outside / "dataset" / "extracted"
    dest.mkdir(parents=True)
    before = _tree(tmp_path)
    with pytest.raises(BadUpload) as info:
        safe_extract(io.BytesIO(data), dest, LIMITS)
    assert REASONS[case] in info.value.reason
    assert isinstance(info.value, UploadTooLarge) == (case in OVER_A_CAP)  # the API answers 413, else 422
    written_outside = {p for p in _tree(tmp_path) - before if not p.startswith("outside/dataset/")}
    assert written_outside == set(), (case, written_outside)
    assert not Path("/tmp/escaped-abs.txt").exists()
    assert not any(os.path.islink(p) for p in (dest.rglob("*")))


def test_a_good_zip_extracts_every_file_inside(tmp_path):
    written = safe_extract(io.BytesIO(shapes_zip(per_class=2)), tmp_path, LIMITS)
    assert len(written) == 6 and all(tmp_path in p.parents for p in written)


def test_a_header_that_understates_the_size_is_caught_while_writing(tmp_path):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("cat/a.png", b"A" * 1000)
    data = buf.getvalue()
    # rewrite the declared size (local and central headers) from 1000 to 10 bytes
    lied = data.replace((1000).to_bytes(4, "little") * 2, (1000).to_bytes(4, "little") + (10).to_bytes(4, "little"))
    assert lied != data
    with pytest.raises(BadUpload):
        safe_extract(io.BytesIO(lied), tmp_path, LIMITS)
