"""Zips that try to escape their folder or exhaust the server, each built in memory."""
from __future__ import annotations

import io
import stat
import warnings
import zipfile

from tests.utils.shapes import shapes_zip


def _zip(entries: list[tuple[zipfile.ZipInfo | str, bytes]]) -> bytes:
    buf = io.BytesIO()
    with warnings.catch_warnings(), zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        warnings.simplefilter("ignore")  # the duplicate entry is the point
        for info, data in entries:
            zf.writestr(info, data)
    return buf.getvalue()


def _symlink(name: str, target: str) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name)
    info.external_attr = (stat.S_IFLNK | 0o777) << 16
    return info


def _not_utf8_name() -> bytes:
    # zipfile writes ASCII names without the UTF-8 flag; swap in bytes that are not UTF-8
    data = _zip([("a/XX.png", b"x"), ("b/ok.png", b"y")])
    return data.replace(b"a/XX.png", b"a/\xff\xfe.png")


def hostile_zips(limits_total: int = 1 << 30, max_files: int = 10_000) -> dict[str, bytes]:
    """name -> zip bytes; every one must be refused with a 4xx and write nothing outside its folder."""
    zeros = b"\0" * (3 << 19)  # 1.5 MiB of zeros deflates ~1000x
    return {
        "traversal": _zip([("cat/ok.png", b"x"), ("../../escaped.txt", b"pwned")]),
        "nested_traversal": _zip([("cat/../../escaped.txt", b"pwned")]),
        "backslash_traversal": _zip([("cat\\..\\..\\escaped.txt", b"pwned")]),
        "absolute": _zip([("/tmp/escaped-abs.txt", b"pwned")]),
        "drive_letter": _zip([("C:/escaped.txt", b"pwned")]),
        "symlink": _zip([(_symlink("cat/link.png", "/etc/passwd"), b"/etc/passwd")]),
        "symlink_dir_then_file": _zip([(_symlink("cat", "/tmp"), b"/tmp"), ("cat/escaped.txt", b"pwned")]),
        "ratio_bomb": _zip([("cat/zeros.png", zeros)]),
        "total_size": _zip([(f"cat/{i}.png", b"\1" * (limits_total // 2 + 1)) for i in range(2)])
        if limits_total <= 8 << 20 else _zip([("cat/zeros.png", zeros)]),
        "too_many_files": _zip([(f"cat/{i}.png", b"x") for i in range(max_files + 1)]),
        "nested_zip": _zip([("cat/inner.zip", shapes_zip(per_class=1))]),
        "zip_disguised_as_png": _zip([("cat/inner.png", shapes_zip(per_class=1)), ("dog/a.png", b"x")]),
        "not_utf8_name": _not_utf8_name(),
        "duplicate_entry": _zip([("cat/a.png", b"x"), ("cat/a.png", b"y")]),
        "not_a_zip": b"PK\x03\x04 this is not really a zip",
    }
