"""Bodies over the cap are refused with 413 while they stream, declared or not (in-process tier)."""
from __future__ import annotations

from fastapi import FastAPI, File, UploadFile
from fastapi.testclient import TestClient

from api.body_limit import BodySizeLimit


def _app(max_bytes: int) -> FastAPI:
    app = FastAPI()
    app.add_middleware(BodySizeLimit, prefix="/v1/datasets", max_bytes=max_bytes)

    @app.post("/v1/datasets")
    def upload(file: UploadFile = File(...)) -> dict:
        return {"size": len(file.file.read())}

    @app.post("/other")
    def other(file: UploadFile = File(...)) -> dict:
        return {"size": len(file.file.read())}

    return app


def test_declared_length_over_the_cap_is_413_before_reading():
    client = TestClient(_app(1000))
    response = client.post("/v1/datasets", files={"file": ("a.zip", b"x" * 5000)})
    assert response.status_code == 413 and "1,000 bytes" in response.json()["detail"]


def test_chunked_body_over_the_cap_is_413_while_streaming():
    client = TestClient(_app(1000))

    def chunks():
        yield b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.zip\"\r\n\r\n"
        for _ in range(10):
            yield b"x" * 500
        yield b"\r\n--b--\r\n"

    response = client.post("/v1/datasets", content=chunks(),
                           headers={"content-type": "multipart/form-data; boundary=b"})
    assert response.status_code == 413


def test_small_bodies_and_other_paths_pass():
    client = TestClient(_app(1000))
    assert client.post("/v1/datasets", files={"file": ("a.zip", b"x" * 100)}).json() == {"size": 100}
    assert client.post("/other", files={"file": ("a.zip", b"x" * 5000)}).json() == {"size": 5000}
