"""Each file of a predict form has its own cap, checked while the body streams (in-process tier)."""
from __future__ import annotations

import asyncio

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from api.errors import install_error_handlers
from api.predict.errors import FileTooLarge
from api.predict.form import read_form, read_parts


def _app(max_file_bytes: int) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)

    @app.post("/predict")
    async def predict(request: Request) -> dict:
        form = await read_form(request, max_file_bytes=max_file_bytes)
        try:
            return {"sizes": [len(await f.read()) for f in form.getlist("files")], "top_k": form.get("top_k")}
        finally:
            await form.close()

    return app


def _stream(parts: list[tuple[str, int]]):
    for name, size in parts:
        yield f'--b\r\nContent-Disposition: form-data; name="files"; filename="{name}"\r\n\r\n'.encode()
        for _ in range(size // 100):
            yield b"x" * 100
        yield b"\r\n"
    yield b"--b--\r\n"


def test_files_under_their_cap_pass_with_the_other_fields():
    app = _app(1000)
    answer = TestClient(app).post("/predict", files=[("files", ("a.png", b"x" * 1000)), ("files", ("b.png", b"y"))],
                                  data={"top_k": "2"})
    assert answer.status_code == 200 and answer.json() == {"sizes": [1000, 1], "top_k": "2"}


def test_a_file_over_its_cap_is_413_naming_it():
    app = _app(1000)
    answer = TestClient(app).post("/predict", content=_stream([("small.png", 500), ("big.png", 100_000)]),
                                  headers={"content-type": "multipart/form-data; boundary=b"})
    assert answer.status_code == 413
    assert answer.json() == {"detail": "file 2 ('big.png') is larger than 1,000 bytes (MAX_UPLOAD_BYTES); "
                                       "send a smaller image"}


def test_the_parser_stops_reading_at_the_cap():
    chunks_read = []

    async def body():
        for chunk in _stream([("small.png", 500), ("big.png", 100_000)]):
            chunks_read.append(len(chunk))
            yield chunk

    with pytest.raises(FileTooLarge):
        asyncio.run(read_parts("multipart/form-data; boundary=b", body(), max_file_bytes=1000))
    assert sum(chunks_read) < 2_000  # the small file and the big one's first 1,100 bytes, not its 100 kB


def test_a_broken_multipart_body_is_still_400():
    app = _app(1000)
    answer = TestClient(app).post("/predict", content=b"not multipart",
                                  headers={"content-type": "multipart/form-data; boundary=b"})
    assert answer.status_code == 400 and "multipart" in answer.json()["detail"]


def _parts(body: bytes, max_file_bytes: int = 10_000_000):
    async def chunks():
        for start in range(0, len(body), 7000):  # the body in pieces, as a socket delivers it
            yield body[start:start + 7000]

    return asyncio.run(read_parts("multipart/form-data; boundary=b", chunks(), max_file_bytes=max_file_bytes))


def _part(name: str, value: bytes, filename: str | None = None) -> bytes:
    disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename is not None else "")
    return f"--b\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + value + b"\r\n"


def test_files_and_fields_come_back_in_order_and_a_large_file_spools_to_disk_whole():
    big = bytes(range(256)) * 8192  # 2 MiB: past the 1 MiB kept in memory
    form = _parts(_part("files", big, "big.png") + _part("top_k", "5".encode()) + _part("files", b"", "")
                  + _part("note", "é".encode()) + b"--b--\r\n")
    try:
        files = form.getlist("files")
        assert [f.filename for f in files] == ["big.png", ""] and files[0].size == len(big)
        assert files[0].file.read() == big and files[0].file._rolled  # on disk, rewound, every byte
        assert form.get("top_k") == "5" and form.get("note") == "é"
    finally:
        asyncio.run(form.close())


@pytest.mark.parametrize("body, why", [
    (_part("files", b"x", "a.png"), "end of multipart stream"),  # no closing boundary: cut short
    (b"".join(_part("f", b"1", f"{i}.png") for i in range(1001)) + b"--b--\r\n", "Too many files"),
    (_part("top_k", b"1" * (1024 * 1024 + 1)) + b"--b--\r\n", "maximum size"),
    (b'--b\r\nContent-Disposition: form-data; name="top_k"\r\nContent-Type: text/plain; charset=bogus\r\n\r\n'
     b"3\r\n--b--\r\n", "unknown charset 'bogus'"),
])
def test_a_cut_short_body_too_many_files_a_huge_text_field_or_an_unknown_charset_is_unreadable(body, why):
    from api.predict.errors import UnreadableForm

    with pytest.raises(UnreadableForm) as info:
        _parts(body)
    assert why in str(info.value)
