"""Image-folder uploads: a zip of `<class>/<image>` checked, decoded with the predict endpoint's rules,
and re-encoded as PNG under names the service chooses."""
from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from ml.data.uploads.common import DEFAULT_IMAGE_SIZE, IGNORED, IMAGES_DIR, UploadLimits, refusals
from ml.data.zipsafe import safe_extract
from ml.errors import BadImage, BadUpload


def _class_root(extracted: Path) -> Path:
    """`<class>/<image>` at the top, or under one folder."""
    top = [p for p in extracted.iterdir() if p.name not in IGNORED and not p.name.startswith(".")]
    dirs = [p for p in top if p.is_dir()]
    if len(top) == 1 and dirs and any(c.is_dir() for c in dirs[0].iterdir()):
        return dirs[0]
    return extracted


def ingest_images(source: Path, out_dir: Path, limits: UploadLimits) -> dict[str, Any]:
    """Check, decode and re-encode a zip of class folders as PNGs under `out_dir`; the manifest."""
    from ml.inference.decode import decode_upload

    extracted = out_dir / "extracted"
    extracted.mkdir(parents=True)
    safe_extract(source, extracted, limits.zip)
    root = _class_root(extracted)
    refused: list[dict[str, str]] = []
    classes: list[dict[str, Any]] = []
    for entry in sorted(root.iterdir()):
        if entry.name in IGNORED or entry.name.startswith("."):
            continue
        if not entry.is_dir():
            refused.append({"file": entry.relative_to(root).as_posix(), "reason": "not inside a class folder"})
            continue
        folder = out_dir / IMAGES_DIR / f"c{len(classes):03d}"
        folder.mkdir(parents=True)
        count = 0
        for path in sorted(p for p in entry.rglob("*") if p.is_file()):
            rel = path.relative_to(root).as_posix()
            if path.name in IGNORED or path.name.startswith("."):
                continue
            try:
                image = decode_upload(path.read_bytes(), max_bytes=limits.max_image_bytes,
                                      max_pixels=limits.max_image_pixels)
            except BadImage as exc:
                refused.append({"file": rel, "reason": exc.reason})
                continue
            image.convert("RGB").save(folder / f"{count:06d}.png")  # our names, our format
            count += 1
        classes.append({"name": entry.name, "count": count})
    shutil.rmtree(extracted)
    _check_classes(classes, limits.min_images_per_class, refused)
    return {"kind": "image_folder", "task": "binary" if len(classes) == 2 else "classification",
            "classes": classes, "columns": [], "target": None, "samples": sum(c["count"] for c in classes),
            "image_size": DEFAULT_IMAGE_SIZE, **refusals(refused)}


def _check_classes(classes: list[dict[str, Any]], minimum: int, refused: list[dict[str, str]]) -> None:
    if len(classes) < 2:
        found = ", ".join(c["name"] for c in classes) or "none"
        raise BadUpload(f"found {len(classes)} class folder(s) ({found}); an image dataset needs at least 2: "
                        "put each class's images in a folder named after the class")
    small = [f"{c['name']!r} has {c['count']}" for c in classes if c["count"] < minimum]
    if small:
        why = f" ({len(refused)} file(s) refused, e.g. {refused[0]['file']}: {refused[0]['reason']})" if refused else ""
        raise BadUpload(f"every class needs at least {minimum} readable images: {'; '.join(small)}{why}")
