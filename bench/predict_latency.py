"""Latency and throughput of POST /v1/predict/mnist against a minimal and a naive endpoint, in one run.

Three servers on loopback, the same mnist cnn checkpoint, torch at 1 intra-op thread:
- trainserve: the service as `make run` starts it (the default, "as run"): scripts/serve.py itself, so
  keys on (the launcher makes the admin key; every request sends `Authorization: Bearer`), the
  launcher's default logging (LOG_LEVEL=info, uvicorn's access log off unless ACCESS_LOG=on), its
  redis-server and a Celery worker running beside the API; the predict rate limit is checked in Redis
  on every request (PREDICT_RATE_PER_S is raised so that it never refuses one). `--bare`: the API alone
  under uvicorn, AUTH=off, no Redis, no worker, no access log (the figures before issue 19);
- minimal: our decoding and MNIST framing, then the model, in one `def` route;
- naive: the tutorial endpoint: Pillow open, grayscale, resize 28×28, normalise, the cnn.
The two reference endpoints run under uvicorn with uvloop, httptools and no access log (as `make run`'s
uvicorn picks by itself). One small PNG per request from a closed-loop load generator at 1, 8 and 32
clients; the servers are measured in interleaved rounds (order reversed every round) so machine load
hits all alike. Prints p50/p99 latency and requests/s of each and the ratios to the naive endpoint.
Targets (issue 19, as run, keys on): at 32 clients trainserve ≥ 1.2× the naive throughput with p99 no
worse; 1-client p50 ≤ 1.3× naive.

    .venv/bin/python bench/predict_latency.py [--requests 300] [--rounds 2] [--checkpoint PATH] [--profile]
                                              [--bare] [--prediction-log on|off]

`--prediction-log on|off` sets PREDICTION_LOG for the trainserve server (the prediction log; default: the
service's own default). Other settings pass through the environment (e.g. `ACCESS_LOG=on`, `LOG_LEVEL=warning`).
`--profile` then samples the trainserve API process with py-spy (every thread) under 1 and under 32 clients,
after the measurements so sampling cannot skew them, and prints where its CPU goes.
Without --checkpoint it trains a small default mnist cnn first (about a minute; DATA_DIR as in settings).
`--photo [--clients 1 --clients 8]` measures the pretrained photo model on cats_dogs instead (its head
trained first, on the features bench/accuracy.py cached), one cats_dogs JPEG per request.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
from fastapi import FastAPI, File, UploadFile

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.embedded_redis import free_port  # noqa: E402
from core.migrate import upgrade  # noqa: E402
from core.settings import Settings  # noqa: E402
from processes import cpu_seconds, start_as_run, stop  # noqa: E402  (bench/ is on sys.path when a bench runs)


# ---- the minimal and the naive endpoints: one `def` route each ------------------------------------

def endpoint_app(checkpoint: str, framing: str):
    """A bare FastAPI app, torch at one thread: decode → preprocess → model → top-3 in one `def` route.

    framing "ours": our decoding and MNIST framing (the minimal endpoint); "naive": Pillow open,
    grayscale, resize 28×28, normalise: the code a tutorial writes.
    """
    import io

    import numpy as np
    import torch
    from PIL import Image

    from ml.checkpoint import load_checkpoint
    from ml.data.transforms import normalize
    from ml.inference.decode import decode_upload
    from ml.inference.digits import to_mnist_uint8
    from ml.models import build_model

    torch.set_num_threads(1)
    state = load_checkpoint(checkpoint)
    ds = state["dataset"]
    model = build_model(state["config"], ds["input_shape"], len(ds["classes"]))
    model.load_state_dict(state["model_state"])
    model.eval()

    def ours(data: bytes) -> torch.Tensor:
        image = decode_upload(data, max_bytes=10 * 1024 * 1024, max_pixels=40_000_000)
        return normalize(to_mnist_uint8(image)[None], ds["mean"], ds["std"])

    def naive(data: bytes) -> torch.Tensor:
        image = Image.open(io.BytesIO(data)).convert("L").resize((28, 28))
        x = torch.from_numpy(np.asarray(image, dtype=np.float32) / 255.0)
        return ((x - ds["mean"][0]) / ds["std"][0])[None, None]

    if ds["input_kind"] == "photos":  # --photo: our serving transform vs a plain square resize
        from ml.data.transforms import photo_to_uint8

        size = int(ds["image_size"])

        def ours(data: bytes) -> torch.Tensor:
            image = decode_upload(data, max_bytes=10 * 1024 * 1024, max_pixels=40_000_000)
            return normalize(photo_to_uint8(image, size)[None], ds["mean"], ds["std"])

        def naive(data: bytes) -> torch.Tensor:
            image = Image.open(io.BytesIO(data)).convert("RGB").resize((size, size))
            x = torch.from_numpy(np.asarray(image, dtype=np.uint8).copy()).permute(2, 0, 1)[None]
            return normalize(x, ds["mean"], ds["std"])

    to_input = ours if framing == "ours" else naive
    app = FastAPI()

    @app.post("/predict")
    def predict(file: UploadFile = File(...)):
        x = to_input(file.file.read())
        with torch.inference_mode():
            p = torch.softmax(model(x), dim=1)[0]
        values, indices = p.topk(min(3, len(ds["classes"])))
        return {"label": ds["classes"][int(indices[0])], "confidence": float(values[0]),
                "top_k": [{"label": ds["classes"][int(i)], "confidence": float(v)} for v, i in zip(values, indices)]}

    return app


# ---- setting up our service with one registered model ---------------------------------------------

def train_checkpoint(out_dir: Path, photo: bool = False) -> Path:
    from ml.config import resolve_config
    from ml.train import train

    if photo:  # the pretrained model's head on cats_dogs (features from the accuracy bench's cache when warm)
        config = resolve_config("efficientnet_lite0", "cats_dogs", {})
        return train(config, data_dir=Settings().data_dir, out_dir=out_dir,
                     cache_dir=ROOT / "var" / "bench" / "cache").best_checkpoint
    config = resolve_config("cnn", "mnist", {"max_train_samples": 6000, "epochs": 1})
    return train(config, data_dir=Settings().data_dir, out_dir=out_dir).best_checkpoint


def register(database_url: str, checkpoint: Path, var_dir: Path) -> int:
    """Record a succeeded job with this checkpoint (put in VAR_DIR's artifact store) and register it, as the worker would."""
    import hashlib

    from core.artifacts import open_store
    from core.db import make_engine
    from core.model_registry import promote, register_model_version
    from core.orm import Checkpoint, Job, utcnow
    from ml.checkpoint import load_checkpoint
    from sqlalchemy.orm import Session

    state = load_checkpoint(checkpoint)
    best = state["best"]
    job = Job(id=str(uuid.uuid4()), model=state["config"]["model"], dataset=state["config"]["dataset"],
              status="succeeded", config=state["config"], seed=0,
              best_epoch=state["epoch"], best_metric={"name": "val_accuracy", "value": best["value"]},
              test_metrics={}, created_at=utcnow(), finished_at=utcnow())
    engine = make_engine(database_url)
    with Session(engine) as session:
        session.add(job)
        session.flush()
        key = f"jobs/{job.id}/{checkpoint.name}"  # the worker's key for a job's checkpoint
        settings = Settings(var_dir=var_dir, database_url=database_url)
        open_store(settings.artifact_store_url, settings).put(key, checkpoint)
        session.add(Checkpoint(job_id=job.id, epoch=state["epoch"], path=key, is_best=True,
                               sha256=hashlib.sha256(checkpoint.read_bytes()).hexdigest(),
                               size_bytes=checkpoint.stat().st_size, metrics={}))
        session.commit()
        version_id = register_model_version(session, job=job).id
        promote(session, model_id=version_id)  # serve it (the bench job records no validation split)
    engine.dispose()
    return version_id


def start(command: list[str], env: dict, port: int, log: Path) -> subprocess.Popen:
    with log.open("w") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                   start_new_session=True)
    deadline = time.monotonic() + 120
    while True:
        try:
            httpx.get(f"http://127.0.0.1:{port}/docs", timeout=1)
            return process
        except httpx.HTTPError:
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server did not start: {log.read_text()[-3000:]}")
            time.sleep(0.2)


# ---- the load ---------------------------------------------------------------------------------------

def encoded_request(url: str, field: str, png: bytes, key: str | None = None) -> tuple[str, int, bytes]:
    """(host, port, the whole POST as bytes): httpx encodes the multipart body once, not per request."""
    name, kind = ("photo.jpg", "image/jpeg") if png.startswith(b"\xff\xd8") else ("digit.png", "image/png")
    request = httpx.Request("POST", url, files={field: (name, png, kind)})
    body = request.read()
    head = [f"POST {request.url.raw_path.decode()} HTTP/1.1", f"Host: {request.url.netloc.decode()}",
            *([f"Authorization: Bearer {key}"] if key else []),
            f"Content-Type: {request.headers['content-type']}", f"Content-Length: {len(body)}", "", ""]
    return request.url.host, request.url.port, "\r\n".join(head).encode() + body


async def load(url: str, field: str, png: bytes, clients: int, requests: int,
               key: str | None = None) -> tuple[list[float], float]:
    """`requests` POSTs spread over `clients` keep-alive connections; (latencies s, wall s).

    Each client writes the pre-encoded request and reads the status line, headers and Content-Length
    body off its socket: ~0.05 ms of CPU per request. httpx's AsyncClient spent ~1.2 ms per request
    here, more than either server, so on two shared cores it measured itself as much as the servers.
    """
    host, port, request = encoded_request(url, field, png, key)
    latencies: list[float] = []
    per_client = [requests // clients + (i < requests % clients) for i in range(clients)]

    async def one_client(n: int) -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            for _ in range(n):
                t0 = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                              if line.lower().startswith(b"content-length:"))
                body = await reader.readexactly(length)
                latencies.append(time.perf_counter() - t0)
                if not head.startswith(b"HTTP/1.1 200"):
                    status = head.partition(b"\r\n")[0].decode()
                    raise RuntimeError(f"{url}: {status} {body[:300]!r}")
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(one_client(n) for n in per_client))
    return latencies, time.perf_counter() - started


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def photo_jpeg() -> bytes:
    """One cats_dogs photo as stored (a JPEG of a few hundred pixels a side)."""
    root = Settings().data_dir / "cats-dogs" / "cat"
    return sorted(root.glob("*.jpg"))[0].read_bytes()


def small_png() -> bytes:
    import io
    import random

    sys.path.insert(0, str(ROOT / "tests" / "ml" / "inference"))
    from drawn_digits import CANVASES, draw_digit

    img = draw_digit(7, random.Random(0), CANVASES[0]).resize((100, 100))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


CLIENTS = (1, 8, 32)
# the minimal and naive servers (and trainserve with --bare) run under these uvicorn settings: uvloop and
# httptools (uvicorn[standard]; what "auto" picks when they are installed, as under `make run`), no access log
UVICORN = {"log_level": "warning", "loop": "uvloop", "http": "httptools", "access_log": False}
SERVERS = ("trainserve", "minimal", "naive")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="requests per measurement")
    parser.add_argument("--rounds", type=int, default=2, help="interleaved rounds per server and concurrency")
    parser.add_argument("--checkpoint", type=Path, help="an mnist checkpoint (default: train a small cnn)")
    parser.add_argument("--profile", action="store_true", help="then sample the trainserve API with py-spy")
    parser.add_argument("--bare", action="store_true", help="trainserve's API alone: AUTH=off, no Redis, no "
                        "worker, no access log (default: as `make run` starts it, keys on)")
    parser.add_argument("--prediction-log", choices=("on", "off"), help="PREDICTION_LOG for trainserve")
    parser.add_argument("--photo", action="store_true", help="the pretrained photo model on cats_dogs (one "
                        "photo per request; naive: Pillow open, RGB, square resize, forward) instead of mnist")
    parser.add_argument("--clients", type=int, action="append", help="concurrency levels (default 1 8 32)")
    parser.add_argument("--serve", choices=("minimal", "naive"), help=argparse.SUPPRESS)
    parser.add_argument("--serve-checkpoint", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.serve:  # child process: the minimal or the naive server
        import uvicorn

        app = endpoint_app(str(args.serve_checkpoint), "ours" if args.serve == "minimal" else "naive")
        uvicorn.run(app, host="127.0.0.1", port=args.port, **UVICORN)
        return

    import uvloop

    asyncio.set_event_loop_policy(uvloop.EventLoopPolicy())  # the load generator's own loop: less CPU per request
    global CLIENTS
    CLIENTS = tuple(args.clients or CLIENTS)
    with tempfile.TemporaryDirectory(prefix="predict-bench-") as tmp:
        tmp_path = Path(tmp)
        checkpoint = Path(args.checkpoint or train_checkpoint(tmp_path / "run", args.photo)).resolve()
        png = photo_jpeg() if args.photo else small_png()
        servers, targets, pids = start_servers(args, checkpoint, tmp_path)
        try:
            try:
                results = measure(targets, pids, png, args)
            except RuntimeError:
                print(f"trainserve's log ends:\n{(tmp_path / 'trainserve.log').read_text()[-4000:]}", file=sys.stderr)
                raise
            profiles = {clients: profile(pids["trainserve"], *targets["trainserve"], png, clients,
                                         args.requests, Path(tempfile.gettempdir()) / f"predict-bench-spy-{clients}.txt")
                        for clients in ((1, 32) if args.profile else ())}
        finally:
            for server in servers:
                stop(server)
    report(results, len(png), args)
    for clients, shares in profiles.items():
        print(f"trainserve CPU by part, {clients} client(s) (py-spy, active samples of every thread; raw stacks "
              f"in {Path(tempfile.gettempdir()) / f'predict-bench-spy-{clients}.txt'}):")
        for part, share in sorted(shares.items(), key=lambda kv: -kv[1]):
            print(f"  {share * 100:5.1f}%  {part}")


Target = tuple[str, str, str | None]  # url, the file field's name, the API key to send (None: none)


def start_servers(args: argparse.Namespace, checkpoint: Path, tmp_path: Path
                  ) -> tuple[list[subprocess.Popen], dict[str, Target], dict[str, int]]:
    """trainserve (as run, or bare), the minimal and the naive server: (processes to stop, targets, pids to measure)."""
    database_url = f"sqlite:///{tmp_path / 'bench.db'}"
    upgrade(database_url)
    register(database_url, checkpoint, tmp_path / "var")
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_", "ARTIFACT_"))}
    # the rate limit is still taken in Redis on every request, but never refuses the load generator's one key
    env.update(PREDICT_RATE_PER_S="1e9", PREDICT_BURST="1000000", DATABASE_URL=database_url,
               VAR_DIR=str(tmp_path / "var"), PYTHONUNBUFFERED="1")
    if args.prediction_log:
        env["PREDICTION_LOG"] = args.prediction_log
    ports = {name: free_port() for name in SERVERS}
    servers, pids, key = [], {}, None
    try:
        if args.bare:
            ours = [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1", "--port",
                    str(ports["trainserve"]), "--log-level", UVICORN["log_level"], "--loop", UVICORN["loop"],
                    "--http", UVICORN["http"], "--no-access-log"]
            servers.append(start(ours, {**env, "AUTH": "off"}, ports["trainserve"], tmp_path / "trainserve.log"))
            pids["trainserve"] = servers[-1].pid
        else:
            launcher, pids["trainserve"], key = start_as_run(env, ports["trainserve"], tmp_path)
            servers.append(launcher)
        for name in ("minimal", "naive"):
            servers.append(start([sys.executable, __file__, "--serve", name, "--serve-checkpoint", str(checkpoint),
                                  "--port", str(ports[name])], env, ports[name], tmp_path / f"{name}.log"))
            pids[name] = servers[-1].pid
    except BaseException:
        for server in servers:
            stop(server)
        raise
    dataset = "cats_dogs" if args.photo else "mnist"
    targets = {"trainserve": (f"http://127.0.0.1:{ports['trainserve']}/v1/predict/{dataset}", "files", key),
               "minimal": (f"http://127.0.0.1:{ports['minimal']}/predict", "file", None),
               "naive": (f"http://127.0.0.1:{ports['naive']}/predict", "file", None)}
    return servers, targets, pids


def measure(targets: dict[str, Target], pids: dict[str, int], png: bytes, args: argparse.Namespace) -> dict:
    """Every server at every concurrency, in interleaved rounds: (latencies, wall, n, server CPU, own CPU) per cell."""
    results: dict[tuple[str, int], tuple[list[float], float, int, float, float]] = {}
    for url, field, key in targets.values():  # warm up: load models, JIT paths, connections
        asyncio.run(load(url, field, png, 4, 40, key))
    for round_ in range(args.rounds):
        for clients in CLIENTS:
            order = list(targets.items())
            for name, (url, field, key) in order if round_ % 2 == 0 else order[::-1]:
                cpu, own = cpu_seconds(pids[name]), time.process_time()
                latencies, wall = asyncio.run(load(url, field, png, clients, args.requests, key))
                cpu, own = cpu_seconds(pids[name]) - cpu, time.process_time() - own
                old = results.get((name, clients), ([], 0.0, 0, 0.0, 0.0))
                results[(name, clients)] = (old[0] + latencies, old[1] + wall, old[2] + len(latencies),
                                            old[3] + cpu, old[4] + own)
    return results


# ---- where the CPU goes ------------------------------------------------------------------------------

# the first rule a sampled stack matches names its part (most specific first)
PARTS = [
    ("forward (torch)", ("torch/nn/", "Predictor.forward", "Predictor.probabilities")),
    ("MNIST framing", ("ml/inference/digits.py",)),
    ("abstain check", ("ml/inference/content.py",)),
    ("decoding (Pillow, checks)", ("ml/inference/decode.py",)),
    ("answers, top-k", ("Predictor.answer", "Predictor.predictions")),
    ("response body (pydantic)", ("render (api/predict/router.py",)),
    ("logging", ("logging/__init__.py", "core/logs.py")),
    ("key check (auth, KeyCache)", ("api/auth.py", "core/keys.py", "fastapi/security/")),
    ("rate limit (Redis round trip)", ("api/predict/rate_limit.py",)),
    ("Redis client, other", ("redis/",)),
    ("FastAPI dependencies", ("solve_dependencies", "request_params_to_args", "request_body_to_args")),
    ("multipart parsing", ("formparsers", "python_multipart", "Request._get_form")),
    ("the route's own work (options, model pick)", ("api/predict/form.py", "api/predict/pick.py",
                                                    "predict (api/predict/router.py",
                                                    "_predict (api/predict/router.py")),
    ("batch worker plumbing", ("api/predict/batching.py",)),
]
# our ASGI middlewares: a sample is theirs when the innermost of our own frames is in one of them (each
# of them awaits the rest of the app, so their frames are in every stack below them)
MIDDLEWARE_PARTS = [
    ("middleware: body size limit", "api/body_limit.py"),
    ("middleware: in-flight door", "api/in_flight.py"),
    ("middleware: heap trim", "api/memory.py"),
    ("middleware: request timer (prometheus)", "api/metrics.py"),
]
HTTP = ("HTTP, routing, other middleware", ("uvicorn/", "starlette/", "fastapi/", "prometheus_client/"))
IDLE = ("Condition.wait", "PredictBatcher._work (api/predict/batching.py", "Runner.run (asyncio", "select (selectors")


def profile(pid: int, url: str, field: str, key: str | None, png: bytes, clients: int, requests: int,
            out: Path) -> dict[str, float]:
    """Sample every thread of `pid` with py-spy while `clients` load it; share of CPU per part."""
    spy = subprocess.Popen([str(Path(sys.executable).with_name("py-spy")), "record", "--threads", "--subprocesses",
                            "-r", "500", "-d", "10", "-f", "raw", "-o", str(out), "-p", str(pid)],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while spy.poll() is None:  # load it for as long as py-spy samples
        asyncio.run(load(url, field, png, clients, requests, key))
    counts: dict[str, int] = {}
    for line in out.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if stack.rsplit(";", 1)[-1].startswith(IDLE):
            continue
        part = part_of(stack)
        counts[part] = counts.get(part, 0) + int(n)
    total = sum(counts.values()) or 1
    return {part: n / total for part, n in counts.items()}


def part_of(stack: str) -> str:
    """The part of the service a py-spy raw stack (root first, frames joined by ";") was busy in."""
    part = next((name for name, keys in PARTS if any(k in stack for k in keys)), None)
    if part is not None:
        return part
    ours = [frame for frame in stack.split(";") if f"{ROOT}/" in frame and "/bench/" not in frame]
    innermost = ours[-1] if ours else ""
    part = next((name for name, path in MIDDLEWARE_PARTS if path in innermost), None)
    return part or (HTTP[0] if any(k in stack for k in HTTP[1]) else "other")


def report(results: dict, png_bytes: int, args: argparse.Namespace) -> None:
    """The table and the ratios to the naive endpoint."""
    print("trainserve: " + ("bare (the API alone, AUTH=off, no Redis or worker, no access log)" if args.bare else
                            "as `make run` starts it (keys on, the launcher's logging, Redis and a worker running)")
          + (f", PREDICTION_LOG={args.prediction_log}" if args.prediction_log else ""))
    print(f"one {png_bytes}-byte image per request, {args.requests} requests × {args.rounds} rounds per cell, "
          f"loopback, {os.cpu_count()} CPUs, torch at 1 thread in every server; load average at the end "
          + " / ".join(f"{v:.2f}" for v in os.getloadavg()) + " (1/5/15 min: how busy the machine was)")
    print(f"{'clients':>7}  {'server':<10} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8} {'CPU ms/req':>10} "
          f"{'load gen CPU ms/req':>19}")
    summary = {}
    for clients in CLIENTS:
        for name in SERVERS:
            latencies, wall, n, cpu, own = results[(name, clients)]
            summary[(name, clients)] = (pct(latencies, 0.5) * 1000, pct(latencies, 0.99) * 1000, n / wall,
                                        cpu / n * 1000)
            print(f"{clients:>7}  {name:<10} " + " ".join(f"{v:>8.2f}" for v in summary[(name, clients)])
                  + f" {own / n * 1000:>19.3f}")
    for clients in CLIENTS:
        naive = summary[("naive", clients)]
        for name in ("trainserve", "minimal"):
            ours = summary[(name, clients)]
            print(f"{clients:>2} clients, {name} / naive: p50 {ours[0] / naive[0]:.2f}×, p99 {ours[1] / naive[1]:.2f}×, "
                  f"throughput {ours[2] / naive[2]:.2f}×")
    print("targets: 32 clients throughput ≥ 1.2× with p99 ≤ 1.0×; 1 client p50 ≤ 1.3×")


if __name__ == "__main__":
    main()
