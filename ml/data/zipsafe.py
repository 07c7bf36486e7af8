"""Extract an uploaded zip without letting it escape its folder or exhaust the disk.

Every entry is checked before a byte is written: names must be valid UTF-8, relative, with no
`..`; no symlinks, no nested archives; the entry count, the declared total size and each entry's
compression ratio are capped (zip bombs). Declared sizes can lie, so bytes are counted again while
they are written. Files are created with O_EXCL | O_NOFOLLOW inside the destination only.
"""
from __future__ import annotations

import os
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from ml.errors import BadUpload, UploadTooLarge

ARCHIVE_SUFFIXES = (".zip", ".jar", ".tar", ".tgz", ".gz", ".bz2", ".xz", ".7z", ".rar")
_MAGIC = (b"PK\x03\x04", b"\x1f\x8b", b"7z\xbc\xaf", b"Rar!")
_UTF8_FLAG = 0x800
_CHUNK = 1 << 16


@dataclass(frozen=True)
class ZipLimits:
    """Caps an upload must stay under."""

    max_files: int = 10_000
    max_total_bytes: int = 1 << 30
    max_ratio: float = 200.0  # uncompressed / compressed, per entry and overall


def _entry_name(info: zipfile.ZipInfo) -> str:
    """The entry's name as UTF-8; zipfile decodes flagless names as cp437, so re-check them."""
    if info.flag_bits & _UTF8_FLAG:
        return info.filename
    raw = info.filename.encode("cp437")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadUpload(f"entry name {raw!r} is not valid UTF-8") from None


def _safe_parts(name: str) -> tuple[str, ...]:
    """The entry's path parts, refusing absolute paths, drive letters and `..`."""
    if "\x00" in name:
        raise BadUpload(f"entry name {name!r} contains a NUL byte")
    posix = name.replace("\\", "/")
    if posix.startswith("/") or (len(posix) > 1 and posix[1] == ":"):
        raise BadUpload(f"entry {name!r} has an absolute path")
    parts = tuple(p for p in PurePosixPath(posix).parts if p not in ("", "."))
    if any(p == ".." for p in parts):
        raise BadUpload(f"entry {name!r} points outside the archive's folder ('..')")
    return parts


def check_entries(archive: zipfile.ZipFile, limits: ZipLimits) -> list[tuple[zipfile.ZipInfo, tuple[str, ...]]]:
    """Every file entry with its safe path parts; BadUpload on the first hostile entry."""
    infos = archive.infolist()
    if len(infos) > limits.max_files:
        raise UploadTooLarge(f"the archive has {len(infos):,} entries; the limit is {limits.max_files:,}")
    total = sum(i.file_size for i in infos)
    if total > limits.max_total_bytes:
        raise UploadTooLarge(f"the archive unpacks to {total:,} bytes; the limit is {limits.max_total_bytes:,}")
    packed = sum(i.compress_size for i in infos)
    if total > limits.max_ratio * max(packed, 1) and total > 1 << 20:
        raise UploadTooLarge(f"the archive expands {total / max(packed, 1):.0f}x; the limit is "
                             f"{limits.max_ratio:g}x (a possible zip bomb)")
    out = []
    for info in infos:
        name = _entry_name(info)
        parts = _safe_parts(name)
        mode = info.external_attr >> 16
        if stat.S_ISLNK(mode):
            raise BadUpload(f"entry {name!r} is a symbolic link")
        if info.is_dir() or not parts:
            continue
        if name.lower().endswith(ARCHIVE_SUFFIXES):
            raise BadUpload(f"entry {name!r} is an archive; nested archives are not accepted")
        if info.file_size > limits.max_ratio * max(info.compress_size, 1) and info.file_size > 1 << 20:
            raise UploadTooLarge(f"entry {name!r} expands {info.file_size / max(info.compress_size, 1):.0f}x; "
                                 f"the limit is {limits.max_ratio:g}x (a possible zip bomb)")
        out.append((info, parts))
    return out


def _copy_capped(src: BinaryIO, fd: int, cap: int, name: str) -> None:
    written = 0
    first = True
    with os.fdopen(fd, "wb") as dst:
        while chunk := src.read(_CHUNK):
            if first and chunk.startswith(_MAGIC):
                raise BadUpload(f"entry {name!r} is an archive; nested archives are not accepted")
            first = False
            written += len(chunk)
            if written > cap:  # the header lied about the size
                raise UploadTooLarge(f"entry {name!r} is larger than its header says (a possible zip bomb)")
            dst.write(chunk)


def safe_extract(source: str | Path | BinaryIO, dest: Path, limits: ZipLimits = ZipLimits()) -> list[Path]:
    """Extract every file of the zip `source` under `dest` (an empty folder); the files written, in order."""
    dest = Path(dest).resolve()
    try:
        archive = zipfile.ZipFile(source)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise BadUpload(f"the file is not a readable zip archive ({exc})") from None
    written: list[Path] = []
    with archive:
        for info, parts in check_entries(archive, limits):
            target = dest.joinpath(*parts)
            if dest not in target.resolve().parents:  # belt and braces after _safe_parts
                raise BadUpload(f"entry {info.filename!r} points outside the archive's folder")
            _make_dirs(dest, parts[:-1])
            try:
                fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0), 0o600)
            except FileExistsError:
                raise BadUpload(f"entry {info.filename!r} appears twice in the archive") from None
            try:
                with archive.open(info) as src:
                    _copy_capped(src, fd, info.file_size, info.filename)
            except (zipfile.BadZipFile, EOFError, NotImplementedError, RuntimeError) as exc:
                raise BadUpload(f"entry {info.filename!r} cannot be read ({exc})") from None
            written.append(target)
    return written


def _make_dirs(dest: Path, parts: tuple[str, ...]) -> None:
    """Create each folder level as a real folder (never through an existing symlink)."""
    current = dest
    for part in parts:
        current = current / part
        try:
            os.mkdir(current, 0o700)
        except FileExistsError:
            if current.is_symlink() or not current.is_dir():
                raise BadUpload(f"{part!r} is both a file and a folder in the archive") from None
