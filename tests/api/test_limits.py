"""Limits enforced before any work, on a private API process (so its memory and temp folder are its own):
a 200 MB upload is refused with 413 while the process stays near idle, and predict is rate-limited per key."""
from __future__ import annotations

import re
import select
import socket
import threading
import time
from pathlib import Path

import pytest

from core.db import session_scope
from core.keys import create_key
from core.orm import Role
from tests.utils.clients import api_client
from tests.utils.models import digit_png, predict
from tests.utils.stack import Stack

pytestmark = pytest.mark.service

MB = 1_000_000


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    root = tmp_path_factory.mktemp("limits")
    (root / "tmp").mkdir()
    # TMPDIR: where Starlette would spool an upload; PREDICT_*: a limit a test can reach in three requests
    s = Stack(root, extra_env={"TMPDIR": str(root / "tmp"), "MAX_DATASET_UPLOAD_BYTES": str(10 * MB),
                               "PREDICT_RATE_PER_S": "0.2", "PREDICT_BURST": "2"})
    s.start_api()
    yield s
    s.close()


def _rss_kb(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1])


def _du(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


class Peaks(threading.Thread):
    """Samples the API process's resident memory and its spool folders until stopped."""

    def __init__(self, pid: int, folders: list[Path]):
        super().__init__(daemon=True)
        self.pid, self.folders, self.rss_kb, self.disk, self.done = pid, folders, 0, 0, threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            self.rss_kb = max(self.rss_kb, _rss_kb(self.pid))
            self.disk = max(self.disk, sum(_du(f) for f in self.folders if f.exists()))
            time.sleep(0.01)


def _send_until_answered(sock: socket.socket, block: bytes, payload: int, total: int) -> int:
    """Send `block` (carrying `payload` bytes of the file) until `total` went out or the server answered or
    closed; the file bytes sent."""
    sent = 0
    try:
        while sent < total and not select.select([sock], [], [], 0)[0]:
            sock.sendall(block)
            sent += payload
    except (BrokenPipeError, ConnectionResetError):
        pass
    return sent


def _read_response(sock: socket.socket) -> bytes:
    """The whole response: its head and Content-Length body can arrive in separate reads."""
    answer = b""
    try:
        while part := sock.recv(65536):
            answer += part
            head, sep, body = answer.partition(b"\r\n\r\n")
            length = re.search(rb"(?im)^content-length: *(\d+)", head) if sep else None
            if length and len(body) >= int(length.group(1)):
                break
    except (ConnectionResetError, TimeoutError):
        pass
    return answer


def _upload_chunked(url: str, key: str, total: int) -> tuple[bytes, int]:
    """POST /v1/datasets with a `total`-byte file in chunked encoding (no Content-Length), as a raw socket
    does it: keep sending until the server answers or closes; returns (response head, bytes sent)."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=30)
    head = (f"POST /v1/datasets HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n"
            "Content-Type: multipart/form-data; boundary=b\r\nTransfer-Encoding: chunked\r\n\r\n").encode()
    opening = b'--b\r\nContent-Disposition: form-data; name="name"\r\n\r\nbig\r\n' \
              b'--b\r\nContent-Disposition: form-data; name="file"; filename="big.zip"\r\n\r\n'
    sock.sendall(head + f"{len(opening):x}\r\n".encode() + opening + b"\r\n")
    sent = _send_until_answered(sock, f"{MB:x}\r\n".encode() + b"\0" * MB + b"\r\n", MB, total)
    answer = _read_response(sock)
    sock.close()
    return answer, sent


def test_a_200_mb_upload_is_413_while_the_api_stays_near_idle(stack):
    incoming = stack.root / "var" / "artifacts" / "datasets"
    idle_kb = _rss_kb(stack.api.pid)
    peaks = Peaks(stack.api.pid, [stack.root / "tmp", incoming])
    peaks.start()
    try:
        answer, sent = _upload_chunked(stack.url, stack.key, 200 * MB)
    finally:
        peaks.done.set()
        peaks.join()
    assert answer.startswith(b"HTTP/1.1 413"), answer[:300]
    assert b"MAX_DATASET_UPLOAD_BYTES" in answer
    assert sent < 200 * MB  # refused while it streamed, not after
    assert (peaks.rss_kb - idle_kb) < 16 * 1024, f"API memory grew {(peaks.rss_kb - idle_kb) / 1024:.1f} MB"
    assert peaks.disk < 16 * MB, f"{peaks.disk / MB:.1f} MB spooled"
    print(f"200 MB upload: API RSS +{(peaks.rss_kb - idle_kb) / 1024:.1f} MB, spooled {peaks.disk / MB:.1f} MB, "
          f"sent {sent / MB:.0f} MB before the 413")


def test_a_declared_200_mb_body_is_413_before_a_byte_is_read(stack):
    host, port = stack.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall((f"POST /v1/datasets HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {stack.key}\r\n"
                      f"Content-Type: multipart/form-data; boundary=b\r\nContent-Length: {200 * MB}\r\n\r\n").encode())
        assert sock.recv(65536).startswith(b"HTTP/1.1 413")


def _predict_one_file(url: str, key: str, total: int, chunk: int = 256 * 1024) -> tuple[bytes, int]:
    """POST /v1/predict/mnist with one `total`-byte file (declared, so the request cap lets it in) from a raw
    socket with a small send buffer; returns (response head, bytes the connection accepted before the answer)."""
    host, port = url.removeprefix("http://").split(":")
    opening = b'--b\r\nContent-Disposition: form-data; name="files"; filename="huge.png"\r\n\r\n'
    closing = b"\r\n--b--\r\n"
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)  # what was sent is close to what was read
    sock.settimeout(30)
    sock.connect((host, int(port)))
    sock.sendall((f"POST /v1/predict/mnist HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n"
                  "Content-Type: multipart/form-data; boundary=b\r\n"
                  f"Content-Length: {len(opening) + total + len(closing)}\r\n\r\n").encode() + opening)
    sent = _send_until_answered(sock, b"\0" * chunk, chunk, total)
    answer = _read_response(sock)
    sock.close()
    return answer, sent


def test_a_200_mb_predict_file_is_413_before_12_mb_are_read(stack):
    # 200 MB is under the request cap (MAX_UPLOAD_FILES x MAX_UPLOAD_BYTES): the file's own cap stops it
    with session_scope(stack.database_url) as session:
        key = create_key(session, owner="big-file", role=Role.user)[1]
    answer, sent = _predict_one_file(stack.url, key, 200 * MB)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:300]
    assert b"huge.png" in answer and b"10,485,760 bytes (MAX_UPLOAD_BYTES)" in answer
    assert sent < 12 * MB, f"{sent / MB:.1f} MB accepted before the 413"
    print(f"200 MB predict file: {sent / MB:.1f} MB accepted before the 413")


def test_predict_is_rate_limited_per_key_with_retry_after(stack):
    # this stack starts no redis-server: the limit falls back to the API process's own buckets
    # (tests/api/test_two_apis.py tests the shared one)
    with session_scope(stack.database_url) as session:
        keys = [create_key(session, owner=f"p{i}", role=Role.user)[1] for i in range(2)]
    with api_client(stack.url, keys[0]) as first, api_client(stack.url, keys[1]) as second:
        answers = [predict(first, "mnist", [("7.png", digit_png())]) for _ in range(3)]
        assert [a.status_code == 429 for a in answers] == [False, False, True]  # a burst of 2, then 0.2/s
        assert int(answers[2].headers["Retry-After"]) >= 1
        assert "PREDICT_RATE_PER_S" in answers[2].json()["detail"]
        assert predict(second, "mnist", [("7.png", digit_png())]).status_code != 429  # another key's own bucket
