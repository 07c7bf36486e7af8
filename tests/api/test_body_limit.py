"""Bodies over the cap are refused with 413 while they stream, declared or not (in-process tier)."""
from __future__ import annotations

from fastapi import FastAPI, File, UploadFile
from fastapi.testclient import TestClient

from api.body_limit import BodyCap, BodySizeLimit


def _app(max_bytes: int) -> FastAPI:
    app = FastAPI()
    app.add_middleware(BodySizeLimit, caps=[BodyCap("/v1/datasets", max_bytes, "MAX_DATASET_UPLOAD_BYTES")],
                       max_header_bytes=2000)

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


def test_every_path_has_a_cap_and_headers_have_one_too():
    app = FastAPI()
    app.add_middleware(BodySizeLimit, caps=[BodyCap("/v1/datasets", 10_000, "A"), BodyCap("/", 100, "MAX_REQUEST_BYTES")],
                       max_header_bytes=2000)

    @app.post("/v1/jobs")
    def jobs(body: dict) -> dict:
        return body

    client = TestClient(app)
    assert client.post("/v1/jobs", json={"a": 1}).json() == {"a": 1}
    refused = client.post("/v1/jobs", json={"a": "x" * 200})
    assert refused.status_code == 413 and "MAX_REQUEST_BYTES" in refused.json()["detail"]
    assert client.post("/v1/jobs", json={"a": 1}, headers={"x-big": "y" * 3000}).status_code == 431
