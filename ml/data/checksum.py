"""Content checksums of dataset sources, memoised so a worker hashes each file once."""
from __future__ import annotations

import hashlib
import json
import os
import threading
from pathlib import Path

# (absolute path, size, mtime_ns) -> sha256 hex: a rewritten file gets a new key
_file_hashes: dict[tuple[str, int, int], str] = {}
_lock = threading.Lock()


def file_identity(path: str | Path) -> tuple[str, int, int]:
    """What we trust to change when a file's bytes change (cheap: one stat call)."""
    st = os.stat(path)
    return (os.path.abspath(path), st.st_size, st.st_mtime_ns)


def file_sha256(path: str | Path) -> str:
    """sha256 of one file's bytes, memoised in-process by path, size and mtime."""
    key = file_identity(path)
    with _lock:
        cached = _file_hashes.get(key)
    if cached is None:
        h = hashlib.sha256()
        with open(path, "rb") as f:
            while chunk := f.read(1 << 20):
                h.update(chunk)
        cached = h.hexdigest()
        with _lock:
            _file_hashes[key] = cached
    return cached


def files_checksum(root: str | Path, names: list[str]) -> str:
    """sha256 over every file's name ("/"-separated, relative to root) and content hash, in name order."""
    h = hashlib.sha256()
    for rel in sorted(names):
        h.update(f"{rel}\0{file_sha256(os.path.join(root, rel))}\n".encode())
    return h.hexdigest()


def params_checksum(params: dict) -> str:
    """sha256 over a generator's parameters (JSON with sorted keys)."""
    return hashlib.sha256(json.dumps(params, sort_keys=True).encode()).hexdigest()
