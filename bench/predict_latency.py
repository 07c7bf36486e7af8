"""Latency and throughput of POST /v1/predict/mnist against a minimal FastAPI endpoint, side by side.

Both servers run the same mnist cnn checkpoint, the same decoding and MNIST-style preprocessing, under
uvicorn on loopback: ours goes through the registry, the in-memory serving swap and the response
schemas; the minimal one decodes and runs the model in one function. One small PNG per request,
at 1 and at 32 concurrent clients, the two servers measured in alternating rounds so machine load
hits both alike. Prints p50/p99 latency and requests/s of each and the ratios.
Targets: p50 ≤ 1.3× the minimal endpoint's; throughput at 32 clients ≥ 0.8× its.

    .venv/bin/python bench/predict_latency.py [--requests 300] [--rounds 2] [--checkpoint PATH]

The serving API sets torch to 1 intra-op thread (ML_NUM_THREADS overrides): requests already run in
parallel. `--minimal-threads 1` gives the minimal server the same setting, for the like-for-like view.

Without --checkpoint it trains a small default mnist cnn first (about a minute; DATA_DIR as in settings).
"""
from __future__ import annotations

import argparse
import asyncio
import os
import statistics
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
from processes import stop  # noqa: E402  (bench/ is on sys.path when a bench runs)


# ---- the minimal endpoint: decode and run the model in one function --------------------------------

def minimal_app(checkpoint: str):
    """A bare FastAPI app: one `def` route doing decode → preprocess → model → top-3."""
    import torch

    from ml.checkpoint import load_checkpoint
    from ml.data.transforms import normalize
    from ml.inference.decode import decode_upload
    from ml.inference.digits import to_mnist_uint8
    from ml.models import build_model

    if os.environ.get("MINIMAL_THREADS"):
        torch.set_num_threads(int(os.environ["MINIMAL_THREADS"]))
    state = load_checkpoint(checkpoint)
    ds = state["dataset"]
    model = build_model(state["config"], ds["input_shape"], len(ds["classes"]))
    model.load_state_dict(state["model_state"])
    model.eval()
    app = FastAPI()

    @app.post("/predict")
    def predict(file: UploadFile = File(...)):
        image = decode_upload(file.file.read(), max_bytes=10 * 1024 * 1024, max_pixels=40_000_000)
        x = normalize(to_mnist_uint8(image)[None], ds["mean"], ds["std"])
        with torch.inference_mode():
            p = torch.softmax(model(x), dim=1)[0]
        values, indices = p.topk(3)
        return {"label": ds["classes"][int(indices[0])], "confidence": float(values[0]),
                "top_k": [{"label": ds["classes"][int(i)], "confidence": float(v)} for v, i in zip(values, indices)]}

    return app


# ---- setting up our service with one registered model ---------------------------------------------

def train_checkpoint(out_dir: Path) -> Path:
    from ml.config import resolve_config
    from ml.train import train

    config = resolve_config("cnn", "mnist", {"max_train_samples": 6000, "epochs": 1})
    return train(config, data_dir=Settings().data_dir, out_dir=out_dir).best_checkpoint


def register(database_url: str, checkpoint: Path) -> int:
    """Record a succeeded job with this checkpoint and register it, as the worker would."""
    import hashlib

    from core.db import make_engine
    from core.model_registry import register_model_version
    from core.models import Checkpoint, Job, utcnow
    from ml.checkpoint import load_checkpoint
    from sqlalchemy.orm import Session

    state = load_checkpoint(checkpoint)
    best = state["best"]
    job = Job(id=str(uuid.uuid4()), model="cnn", dataset="mnist", status="succeeded", config=state["config"], seed=0,
              best_epoch=state["epoch"], best_metric={"name": "val_accuracy", "value": best["value"]},
              test_metrics={}, created_at=utcnow(), finished_at=utcnow())
    engine = make_engine(database_url)
    with Session(engine) as session:
        session.add(job)
        session.flush()
        session.add(Checkpoint(job_id=job.id, epoch=state["epoch"], path=str(checkpoint), is_best=True,
                               sha256=hashlib.sha256(checkpoint.read_bytes()).hexdigest(),
                               size_bytes=checkpoint.stat().st_size, metrics={}))
        session.commit()
        version_id = register_model_version(session, job=job).id
        session.commit()
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

async def load(url: str, field: str, png: bytes, clients: int, requests: int) -> tuple[list[float], float]:
    """`requests` POSTs spread over `clients` concurrent connections; (latencies s, wall s)."""
    latencies: list[float] = []
    per_client = [requests // clients + (i < requests % clients) for i in range(clients)]
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(timeout=60, limits=limits) as client:
        async def one_client(n: int) -> None:
            for _ in range(n):
                t0 = time.perf_counter()
                response = await client.post(url, files={field: ("digit.png", png, "image/png")})
                latencies.append(time.perf_counter() - t0)
                if response.status_code != 200:
                    raise RuntimeError(f"{url}: {response.status_code} {response.text[:300]}")

        started = time.perf_counter()
        await asyncio.gather(*(one_client(n) for n in per_client))
        return latencies, time.perf_counter() - started


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def small_png() -> bytes:
    import io
    import random

    sys.path.insert(0, str(ROOT / "tests" / "ml" / "inference"))
    from drawn_digits import CANVASES, draw_digit

    img = draw_digit(7, random.Random(0), CANVASES[0]).resize((100, 100))
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return buf.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=300, help="requests per measurement")
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds per server and concurrency")
    parser.add_argument("--checkpoint", type=Path, help="an mnist checkpoint (default: train a small cnn)")
    parser.add_argument("--minimal-threads", type=int,
                        help="torch threads of the minimal server (default: torch's own; ours uses 1)")
    parser.add_argument("--serve-minimal", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.serve_minimal:  # child process: the minimal server
        import uvicorn

        uvicorn.run(minimal_app(str(args.serve_minimal)), host="127.0.0.1", port=args.port, log_level="warning",
                    access_log=False)
        return

    with tempfile.TemporaryDirectory(prefix="predict-bench-") as tmp:
        tmp_path = Path(tmp)
        checkpoint = args.checkpoint or train_checkpoint(tmp_path / "run")
        database_url = f"sqlite:///{tmp_path / 'bench.db'}"
        upgrade(database_url)
        register(database_url, Path(checkpoint).resolve())

        env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_"))}
        env.update(AUTH="off", PREDICT_RATE_PER_S="1e9", DATABASE_URL=database_url, VAR_DIR=str(tmp_path / "var"), PYTHONUNBUFFERED="1")
        if args.minimal_threads:
            env["MINIMAL_THREADS"] = str(args.minimal_threads)
        ours_port, minimal_port = free_port(), free_port()
        servers = [
            start([sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1", "--port",
                   str(ours_port), "--log-level", "warning", "--no-access-log"], env, ours_port, tmp_path / "ours.log"),
            start([sys.executable, __file__, "--serve-minimal", str(checkpoint), "--port", str(minimal_port)],
                  env, minimal_port, tmp_path / "minimal.log"),
        ]
        targets = {"trainserve": (f"http://127.0.0.1:{ours_port}/v1/predict/mnist", "files"),
                   "minimal": (f"http://127.0.0.1:{minimal_port}/predict", "file")}
        png = small_png()
        results: dict[tuple[str, int], tuple[list[float], float, int]] = {}
        try:
            for name, (url, field) in targets.items():  # warm up: load models, JIT paths, connections
                asyncio.run(load(url, field, png, 4, 40))
            for round_ in range(args.rounds):
                for clients in (1, 32):
                    order = list(targets.items())
                    for name, (url, field) in order if round_ % 2 == 0 else order[::-1]:
                        latencies, wall = asyncio.run(load(url, field, png, clients, args.requests))
                        old = results.get((name, clients), ([], 0.0, 0))
                        results[(name, clients)] = (old[0] + latencies, old[1] + wall, old[2] + len(latencies))
        finally:
            for server in servers:
                stop(server)

    print(f"one {len(png)}-byte PNG per request, {args.requests} requests × {args.rounds} rounds per cell, "
          f"loopback, {os.cpu_count()} CPUs; torch threads: trainserve {os.environ.get('ML_NUM_THREADS') or 1}, "
          f"minimal {args.minimal_threads or 'default'}")
    print(f"{'clients':>7}  {'server':<10} {'p50 ms':>8} {'p99 ms':>8} {'req/s':>8}")
    summary = {}
    for clients in (1, 32):
        for name in targets:
            latencies, wall, n = results[(name, clients)]
            p50, p99, rps = pct(latencies, 0.5) * 1000, pct(latencies, 0.99) * 1000, n / wall
            summary[(name, clients)] = (p50, p99, rps)
            print(f"{clients:>7}  {name:<10} {p50:>8.2f} {p99:>8.2f} {rps:>8.1f}")
    for clients in (1, 32):
        ours, minimal = summary[("trainserve", clients)], summary[("minimal", clients)]
        print(f"{clients:>2} clients: p50 ratio {ours[0] / minimal[0]:.2f}× (target ≤ 1.3), "
              f"throughput ratio {ours[2] / minimal[2]:.2f}× (target ≥ 0.8 at 32 clients)")


if __name__ == "__main__":
    main()
