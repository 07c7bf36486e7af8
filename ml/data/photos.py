"""Photo folders (`<root>/<class>/*.jpg`): decode and resize once, cache uint8 tensors keyed by content."""
from __future__ import annotations

import hashlib
import os
import tempfile
import threading
import warnings
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import torch
import torchvision
from PIL import Image, ImageOps

from ml.data.base import RawDataset
from ml.data.checksum import files_checksum
from ml.data.transforms import photo_to_uint8
from ml.errors import DatasetFilesMissing

EXTENSIONS = {".jpg", ".jpeg", ".png"}
# bump when the decode path changes (EXIF handling, resize, crop): old caches then stop matching
TRANSFORM_VERSION = 1
CACHE_FORMAT = 1
DEFAULT_CACHE_DIR = Path("var/cache")

# how many images this process has decoded: lets tests prove a cache hit decodes nothing
decode_count = 0
_count_lock = threading.Lock()


def list_photos(root: Path, classes: list[str]) -> tuple[list[tuple[str, int]], list[str]]:
    """("class/file.jpg", class index) of every photo, sorted by class then name, and what is missing."""
    files: list[tuple[str, int]] = []
    missing: list[str] = []
    for label, cls in enumerate(classes):
        try:
            with os.scandir(root / cls) as entries:  # DirEntry.is_file() needs no extra stat call
                names = sorted(e.name for e in entries
                               if os.path.splitext(e.name)[1].lower() in EXTENSIONS and e.is_file())
        except (FileNotFoundError, NotADirectoryError):
            missing.append(f"{cls}/")
            continue
        if not names:
            missing.append(f"{cls}/*.jpg")
        files.extend((f"{cls}/{n}", label) for n in names)
    return files, missing


def decode_photo(path: str | Path, image_size: int) -> torch.Tensor:
    """One photo file -> uint8 (3, image_size, image_size), upright per its EXIF orientation."""
    global decode_count
    with _count_lock:
        decode_count += 1
    with Image.open(path) as image:
        return photo_to_uint8(ImageOps.exif_transpose(image), image_size)


def _decode_or_none(path: str, image_size: int) -> torch.Tensor | str:
    try:
        return decode_photo(path, image_size)
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        return str(exc) or type(exc).__name__


def decode_all(paths: list[str], image_size: int, workers: int | None = None) -> list[torch.Tensor | str]:
    """Decode every path on a small thread pool (Pillow and torch release the GIL); a str says why one failed."""
    workers = workers or min(8, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(pool.map(lambda p: _decode_or_none(p, image_size), paths))


def _cache_key(name: str, checksum: str, image_size: int) -> str:
    # torchvision's resize may change between releases, so its version is part of the key
    text = f"{name}|{checksum}|{image_size}|v{TRANSFORM_VERSION}|torchvision {torchvision.__version__}"
    return hashlib.sha256(text.encode()).hexdigest()


def _read_cache(path: Path, key: str) -> dict | None:
    try:
        data = torch.load(path, weights_only=True)
    except FileNotFoundError:
        return None
    except Exception as exc:  # a damaged cache is rebuilt, never trusted
        warnings.warn(f"ignoring unreadable image cache {path}: {exc}", stacklevel=3)
        return None
    if not isinstance(data, dict) or data.get("format") != CACHE_FORMAT or data.get("key") != key:
        return None
    return data


def _write_atomic(path: Path, data: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(data, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def load_photo_folder(
    name: str, root: Path, classes: list[str], image_size: int, cache_dir: Path | None
) -> RawDataset:
    """uint8 photos (n, 3, s, s) and int64 labels, from the on-disk cache when the files are unchanged."""
    files, missing = list_photos(root, classes)
    if missing:
        raise DatasetFilesMissing(name, root, missing)
    names = [rel for rel, _ in files]
    checksum = files_checksum(root, names)  # hashes every byte (memoised per process)
    key = _cache_key(name, checksum, image_size)
    cache_dir = Path(cache_dir) if cache_dir is not None else DEFAULT_CACHE_DIR
    cache_file = cache_dir / "photos" / f"{name}-{image_size}px-{key[:16]}.pt"

    data = _read_cache(cache_file, key)
    if data is None:
        decoded = decode_all([os.path.join(root, rel) for rel in names], image_size)
        ok = [i for i, d in enumerate(decoded) if not isinstance(d, str)]
        data = {
            "format": CACHE_FORMAT,
            "key": key,
            "x": torch.stack([decoded[i] for i in ok]) if ok else torch.empty(0, 3, image_size, image_size,
                                                                              dtype=torch.uint8),
            "y": torch.tensor([files[i][1] for i in ok], dtype=torch.long),
            "files": [names[i] for i in ok],
            "skipped": [f"{names[i]}: {d}" for i, d in enumerate(decoded) if isinstance(d, str)],
        }
        _write_atomic(cache_file, data)
        for stale in cache_file.parent.glob(f"{name}-{image_size}px-*.pt"):
            if stale != cache_file:  # same dataset and size, older content: never valid again
                stale.unlink(missing_ok=True)
    if data["skipped"]:
        warnings.warn(f"{name}: skipped {len(data['skipped'])} unreadable image(s): "
                      + "; ".join(data["skipped"]), stacklevel=2)
    if len(data["y"]) == 0:
        raise DatasetFilesMissing(name, root, [f"any readable image ({len(data['skipped'])} unreadable)"])
    return RawDataset(
        x=data["x"], y=data["y"], checksum=checksum,
        extra={"files": data["files"], "skipped_files": data["skipped"], "cache_file": str(cache_file)},
    )


def photo_folder_spec(name: str, folder: str, classes: list[str], description: str, *, default_image_size: int = 64,
                      folders: list[str] | None = None, cache_name: str | None = None, uploaded: bool = False):
    """The spec of a `<data_dir>/<folder>/<class>/*.jpg` dataset.

    Uploads pass an absolute `folder`, class `folders` named by the service (c000, …) and a
    `cache_name` from the content hash, so a user's names never become paths.
    """
    from ml.data.registry import DatasetSpec, Located

    subdirs = list(folders or classes)

    def root(data_dir: Path) -> Path:
        return Path(data_dir) / folder  # an absolute `folder` ignores data_dir

    def locate(data_dir: Path) -> Located:
        files, missing = list_photos(root(data_dir), subdirs)
        return Located(str(root(data_dir)), [os.path.join(root(data_dir), rel) for rel, _ in files], missing)

    def sizes(data_dir: Path) -> dict[str, int]:
        files, _ = list_photos(root(data_dir), subdirs)
        return {"total": len(files)}

    return DatasetSpec(
        name=name, task="binary" if len(classes) == 2 else "classification", input_kind="photos",
        classes=tuple(classes), description=description, has_test_split=False, channels=3,
        default_image_size=default_image_size, locate=locate,
        load=lambda data_dir, image_size, cache_dir: load_photo_folder(
            cache_name or name, root(data_dir), subdirs, image_size, cache_dir),
        # an upload has few photos per class: a pretrained backbone learns from them, a net from scratch cannot
        sizes=sizes, upload_framing="photo", servable=True, uploaded=uploaded,
        example_model="efficientnet_lite0" if uploaded else "cnn",
    )
