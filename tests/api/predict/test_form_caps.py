"""Each file of a predict form has its own cap, checked while the body streams (in-process tier)."""
from __future__ import annotations

import asyncio

import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient

from api.errors import install_error_handlers
from starlette.datastructures import Headers

from api.predict.errors import FileTooLarge
from api.predict.form import _CappedParts, read_form


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

    parser = _CappedParts(Headers({"content-type": "multipart/form-data; boundary=b"}), body(), max_file_bytes=1000)
    with pytest.raises(FileTooLarge):
        asyncio.run(parser.parse())
    assert sum(chunks_read) < 2_000  # the small file and the big one's first 1,100 bytes, not its 100 kB


def test_a_broken_multipart_body_is_still_400():
    app = _app(1000)
    answer = TestClient(app).post("/predict", content=b"not multipart",
                                  headers={"content-type": "multipart/form-data; boundary=b"})
    assert answer.status_code == 400 and "multipart" in answer.json()["detail"]
