"""Read IDX files (the MNIST format), gzipped or raw, straight into tensors."""
from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torch

# IDX type code -> big-endian numpy dtype (http://yann.lecun.com/exdb/mnist/)
_DTYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}


def _open(path: Path):
    return gzip.open(path, "rb") if path.name.endswith(".gz") else open(path, "rb")


def _parse_header(path: Path, head: bytes) -> tuple[np.dtype, tuple[int, ...], int]:
    """Validate the magic number; return (dtype, shape, header length in bytes)."""
    if len(head) < 4:
        raise ValueError(f"{path}: not an IDX file (only {len(head)} bytes, need a 4-byte magic number)")
    zero1, zero2, code, ndim = head[0], head[1], head[2], head[3]
    if zero1 or zero2:
        raise ValueError(
            f"{path}: not an IDX file (bad magic number 0x{head[:4].hex()}: first two bytes must be 0)"
        )
    if code not in _DTYPES:
        raise ValueError(f"{path}: unknown IDX data type code 0x{code:02x} (known: 08 09 0b 0c 0d 0e)")
    if not 1 <= ndim <= 8:
        raise ValueError(f"{path}: IDX header declares {ndim} dimensions (expected 1 to 8)")
    header_len = 4 + 4 * ndim
    if len(head) < header_len:
        raise ValueError(f"{path}: truncated IDX header ({len(head)} of {header_len} bytes)")
    shape = tuple(int(d) for d in np.frombuffer(head, dtype=">u4", count=ndim, offset=4))
    return _DTYPES[code], shape, header_len


def read_idx_shape(path: str | Path) -> tuple[int, ...]:
    """Only the shape declared in an IDX file's header (reads a few bytes; no decoding)."""
    path = Path(path)
    try:
        with _open(path) as f:
            head = f.read(4 + 4 * 8)
    except (OSError, EOFError) as exc:  # gzip raises these for corrupt streams
        raise ValueError(f"{path}: cannot read IDX header ({exc})") from exc
    return _parse_header(path, head)[1]


def read_idx(path: str | Path) -> torch.Tensor:
    """The whole IDX file as a tensor (uint8 for MNIST); ValueError naming the file if malformed."""
    path = Path(path)
    try:
        with _open(path) as f:
            data = f.read()
    except (OSError, EOFError) as exc:  # gzip raises these for truncated or corrupt streams
        raise ValueError(f"{path}: cannot read ({exc})") from exc
    dtype, shape, header_len = _parse_header(path, data)
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    actual = len(data) - header_len
    if actual < expected:
        raise ValueError(
            f"{path}: truncated: header declares shape {shape} ({expected} data bytes) "
            f"but the file holds {actual}"
        )
    if actual > expected:
        raise ValueError(
            f"{path}: {actual - expected} unexpected trailing bytes after the {expected} data bytes "
            f"of shape {shape}"
        )
    array = np.frombuffer(data, dtype=dtype, count=expected // dtype.itemsize, offset=header_len)
    # native byte order, writable copy: torch refuses big-endian and warns on read-only buffers
    array = array.astype(dtype.newbyteorder("="), copy=True)
    return torch.from_numpy(array.reshape(shape))
