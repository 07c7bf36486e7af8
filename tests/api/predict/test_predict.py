"""POST /v1/predict/{dataset} over real HTTP: answers in order, and a clear 4xx for every bad input."""
from __future__ import annotations

import base64
import io
import struct
import zlib
from concurrent.futures import ThreadPoolExecutor

import pytest
import torch
from PIL import Image

from core.settings import Settings
from ml.catalog import servable_datasets
from tests.utils.models import digit_png, predict, train_versions
from tests.utils.shapes import short_png

pytestmark = pytest.mark.service


@pytest.fixture(scope="module")
def version(api):
    [v] = train_versions(api, 1)
    return v


def _bomb_png(width: int, height: int) -> bytes:
    """A few hundred bytes whose PNG header claims width×height pixels."""
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"\x00" * 4096)) + chunk(b"IEND", b""))


def test_predicts_each_file_in_order_with_the_model_used(api, version):
    files = [(f"digit-{d}.png", digit_png(d, seed=d)) for d in (3, 7, 1)]
    response = predict(api, "mnist", files)
    assert response.status_code == 200, response.text
    body = response.json()
    model = body["model"]
    assert set(model) >= {"id", "type", "validation_accuracy"} and model["type"] == "mlp"
    listed = api.get(f"/v1/models/{model['id']}").json()
    assert listed["dataset"] == "mnist" and model["validation_accuracy"] == listed["val_accuracy"]
    assert [p["file"] for p in body["predictions"]] == ["digit-3.png", "digit-7.png", "digit-1.png"]
    for p in body["predictions"]:
        assert p["label"] == str(p["class_index"]) and 0 <= p["confidence"] <= 1
        assert len(p["top_k"]) == 3 and p["top_k"][0]["label"] == p["label"]
        assert p["top_k"][0]["confidence"] >= p["top_k"][1]["confidence"] >= p["top_k"][2]["confidence"]


def test_top_k_and_an_explicit_model_id(api, version):
    response = predict(api, "mnist", [("a.png", digit_png())], top_k=1, model_id=version["id"])
    assert response.status_code == 200, response.text
    assert response.json()["model"]["id"] == version["id"]
    assert len(response.json()["predictions"][0]["top_k"]) == 1
    everything = predict(api, "mnist", [("a.png", digit_png())], top_k=50).json()["predictions"][0]["top_k"]
    assert len(everything) == 10 and sum(c["confidence"] for c in everything) == pytest.approx(1, abs=1e-3)


def _photo_jpeg() -> bytes:
    buf = io.BytesIO()
    Image.effect_noise((300, 300), 60).convert("RGB").save(buf, format="JPEG")
    return buf.getvalue()


@pytest.mark.parametrize("name, data, status, says", [
    ("notes.txt", b"this is not a picture at all\n" * 20, 422, "not an image"),
    ("empty.png", b"", 422, "empty"),
    ("cut.jpg", _photo_jpeg()[:3000], 422, "truncated"),
    ("short.png", short_png(6300, 6300, 8), 422, "truncated"),  # a complete stream of 8 rows: 152 bytes
    ("bomb.png", _bomb_png(9000, 9000), 422, "81,000,000 pixels"),
    ("huge.png", b"\x89PNG\r\n\x1a\n" + b"\x00" * (10 * 1024 * 1024), 413, "larger than 10,485,760 bytes"),
])
def test_bad_uploads_get_a_4xx_saying_what_is_wrong(api, version, name, data, status, says):
    files = [("fine.png", digit_png()), (name, data)]
    response = predict(api, "mnist", files)
    assert response.status_code == status, response.text
    detail = response.json()["detail"]
    assert says in detail and f"file 2 ({name!r})" in detail


def test_too_many_files(api, version):
    response = predict(api, "mnist", [(f"{i}.png", digit_png()) for i in range(33)])
    assert response.status_code == 413
    assert "too many files: 33" in response.json()["detail"] and "at most 32" in response.json()["detail"]


def test_no_files(api, version):
    response = api.post("/v1/predict/mnist", data={"top_k": "3"})
    assert response.status_code == 422 and "files" in response.text


def test_bad_top_k(api, version):
    response = predict(api, "mnist", [("a.png", digit_png())], top_k=0)
    assert response.status_code == 422 and response.json()["detail"][0]["field"] == "top_k"


def test_the_hand_parsed_form_answers_like_fastapi_parameters(api, version):
    # api/predict/form.py reads the body itself: FastAPI's 422 shape, its empty-field rule, its 400
    def post(**kwargs):
        return api.post("/v1/predict/mnist", **kwargs)
    text = post(data={"files": "not a file"})
    assert text.status_code == 422 and text.json()["detail"][0]["loc"] == ["body", "files", 0]
    out_of_range = post(params={"model_id": 0}, files=[("files", ("a.png", digit_png()))])
    assert out_of_range.status_code == 422 and out_of_range.json()["detail"][0]["loc"] == ["query", "model_id"]
    empty = post(data={"top_k": "", "explain": ""}, files=[("files", ("a.png", digit_png()))])
    assert empty.status_code == 200 and len(empty.json()["predictions"][0]["top_k"]) == 3
    broken = post(content=b"--x", headers={"content-type": "multipart/form-data"})
    assert broken.status_code == 400 and "multipart" in broken.json()["detail"]


def test_unknown_dataset(api):
    response = predict(api, "imagenet", [("a.png", digit_png())])
    assert response.status_code == 404
    assert "unknown dataset 'imagenet'" in response.json()["detail"] and "mnist" in response.json()["detail"]


def test_no_model_trained_yet_says_how_to_train_one(api):
    untrained = [d for d in servable_datasets()
                 if api.get("/v1/models", params={"dataset": d}).json()["count"] == 0]
    if not untrained:
        pytest.skip("every dataset has a model in this test database")
    dataset = untrained[0]
    response = predict(api, dataset, [("a.png", digit_png())])
    assert response.status_code == 404
    detail = response.json()["detail"]
    assert f"no model has been trained for {dataset!r} yet" in detail
    assert "POST /v1/jobs" in detail and f'"dataset": "{dataset}"' in detail


def test_unknown_model_id(api, version):
    response = predict(api, "mnist", [("a.png", digit_png())], model_id=987654)
    assert response.status_code == 404 and "model 987654 not found" in response.json()["detail"]


def _blank_png(mode: str = "RGB", colour=(255, 255, 255)) -> bytes:
    buf = io.BytesIO()
    Image.new(mode, (64, 64), colour).save(buf, format="PNG")
    return buf.getvalue()


def test_top_k_model_id_and_explain_as_query_parameters(api, version):
    response = api.post("/v1/predict/mnist", params={"top_k": 1, "model_id": version["id"], "explain": "true"},
                        files=[("files", ("a.png", digit_png()))])
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model"]["id"] == version["id"]
    [answer] = body["predictions"]
    assert len(answer["top_k"]) == 1
    shown = Image.open(io.BytesIO(base64.b64decode(answer["input_png"])))
    assert shown.size == (28, 28)  # the model's input size
    assert answer["steps"][0] == "grayscale" and "standardised" in answer["steps"][-1]
    clash = api.post("/v1/predict/mnist", params={"top_k": 1}, data={"top_k": "2"},
                     files=[("files", ("a.png", digit_png()))])
    assert clash.status_code == 422 and "top_k is given twice" in clash.json()["detail"]


def test_every_response_names_the_version_checkpoint_and_preprocessing(api, version):
    body = predict(api, "mnist", [("a.png", digit_png())], model_id=version["id"]).json()
    listed = api.get(f"/v1/models/{version['id']}").json()
    assert body["model"]["checkpoint_sha256"] == listed["checkpoint_sha256"]
    assert body["model"]["preprocessing_version"] == "digits/2"
    assert "input_png" not in body["predictions"][0] and body["predictions"][0]["abstained"] is False


def test_each_answer_says_whether_its_input_looks_unlike_the_training_data(api, version):
    photos = sorted((Settings().data_dir / "cats-dogs").glob("*/*.jpg"))[:4]
    files = [(f"digit-{d}.png", digit_png(d, seed=d)) for d in (3, 7)] + [(p.name, p.read_bytes()) for p in photos]
    response = predict(api, "mnist", files, model_id=version["id"])
    assert response.status_code == 200, response.text
    answers = response.json()["predictions"]
    assert all(isinstance(a["out_of_distribution"], bool) and isinstance(a["ood_score"], float) for a in answers)
    # one threshold per version: every flagged answer scores above every unflagged one
    flagged = [a["ood_score"] for a in answers if a["out_of_distribution"]]
    passed = [a["ood_score"] for a in answers if not a["out_of_distribution"]]
    assert not flagged or not passed or min(flagged) > max(passed), answers
    ood = api.get(f"/v1/jobs/{version['job_id']}").json()["result"]["ood"]  # the version's calibration
    assert ood["score"] == "energy" and ood["quantile"] == 0.95 and 0 <= ood["test_flagged"] <= 1


def test_blank_and_one_colour_uploads_abstain_the_others_are_answered(api, version):
    files = [("seven.png", digit_png(7)), ("blank.png", _blank_png()),
             ("clear.png", _blank_png("RGBA", (0, 0, 0, 0))), ("blue.png", _blank_png("RGB", (20, 40, 200))),
             ("three.png", digit_png(3, seed=3))]
    response = predict(api, "mnist", files, model_id=version["id"])
    assert response.status_code == 200, response.text
    answers = response.json()["predictions"]
    assert [a["file"] for a in answers] == [name for name, _ in files]
    assert [a["abstained"] for a in answers] == [False, True, True, True, False]
    for empty in answers[1:4]:
        assert "label" not in empty and "top_k" not in empty and "one colour" in empty["reason"]
    assert answers[0]["label"] and answers[4]["label"] and isinstance(answers[0]["low_confidence"], bool)


def test_concurrent_requests_each_get_their_own_answers_in_order(api, version):
    uploads = [[(f"{r}-{i}.png", digit_png(d, seed=r)) for i, d in enumerate([(r + k) % 10 for k in range(1 + r % 3)])]
               for r in range(24)]
    alone = [predict(api, "mnist", files, model_id=version["id"], top_k=10).json()["predictions"] for files in uploads]
    before = _batched_forwards(api)
    with ThreadPoolExecutor(max_workers=24) as pool:
        together = list(pool.map(lambda files: predict(api, "mnist", files, model_id=version["id"], top_k=10),
                                 uploads))
    for files, response, expected in zip(uploads, together, alone):
        assert response.status_code == 200, response.text
        got = response.json()["predictions"]
        assert [p["file"] for p in got] == [name for name, _ in files]
        assert [p["label"] for p in got] == [p["label"] for p in expected]
        for g, e in zip(got, expected):
            assert [c["confidence"] for c in g["top_k"]] == pytest.approx([c["confidence"] for c in e["top_k"]],
                                                                          abs=1e-4)
    assert _batched_forwards(api) > before  # the metric counts the forward passes and their sizes


def _batched_forwards(api) -> float:
    text = api.get("/metrics").text
    return sum(float(line.split()[-1]) for line in text.splitlines()
               if line.startswith("trainserve_predict_batch_images_count"))


def test_an_exported_version_answers_like_the_service(api, version):
    from ml.data.transforms import normalize
    from ml.inference.decode import decode_upload
    from ml.inference.digits import to_mnist_uint8
    from ml.inference.export import load_program, load_torchscript

    response = api.get(f"/v1/models/{version['id']}/export", params={"format": "torchscript"})
    assert response.status_code == 200, response.text
    assert f"model-{version['id']}-torchscript.pt" in response.headers["content-disposition"]
    module, metadata = load_torchscript(response.content)
    assert metadata["checkpoint_sha256"] == version["checkpoint_sha256"]
    pngs = [digit_png(d, seed=d) for d in (2, 5, 8)]
    served = predict(api, "mnist", [(f"{i}.png", p) for i, p in enumerate(pngs)], model_id=version["id"], top_k=1)
    pre = metadata["preprocessing"]
    pixels = torch.stack([to_mnist_uint8(decode_upload(p, max_bytes=10**6, max_pixels=10**7)) for p in pngs])
    probs = module(normalize(pixels, pre["mean"], pre["std"]))
    answers = served.json()["predictions"]
    assert probs.argmax(1).tolist() == [a["class_index"] for a in answers]
    assert probs.max(1).values.tolist() == pytest.approx([a["confidence"] for a in answers], abs=1e-4)
    assert api.get("/v1/models/999999/export").status_code == 404
    onnx = api.get(f"/v1/models/{version['id']}/export", params={"format": "onnx"})
    assert onnx.status_code == 200 and f"model-{version['id']}-onnx.onnx" in onnx.headers["content-disposition"]
    pt2 = api.get(f"/v1/models/{version['id']}/export", params={"format": "pt2"})
    assert pt2.status_code == 200 and f"model-{version['id']}-pt2.pt2" in pt2.headers["content-disposition"]
    module, metadata = load_program(pt2.content)
    assert metadata["format"] == "pt2" and module(normalize(pixels, pre["mean"], pre["std"])).argmax(1).tolist() == [
        a["class_index"] for a in answers]
    assert api.get(f"/v1/models/{version['id']}/export", params={"format": "tflite"}).status_code == 422
