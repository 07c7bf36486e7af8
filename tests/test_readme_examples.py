"""Every shell example in README.md and docs/*.md that talks to the API runs as pasted against a real
service (API, worker, Redis, database), with the URL and key in the environment as `trainserve env`
exports them: each curl answer is 2xx and each `trainserve` command exits 0.

The examples name ids as `$JOB_ID`, `$MODEL_ID`, `$SWEEP_ID` and a time as `$AT`; this test sets them
to real objects it made, choosing for each command an object it can act on (a running job for
`cancel`, a finished unserved one for `DELETE`). Work an example starts (a 3-epoch cnn, a 20-trial
sweep) is cancelled as soon as the example has answered, so the worker stays free for the next one.
"""
from __future__ import annotations

import io
import os
import random
import re
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import httpx
import pytest
from PIL import Image

from core.settings import PROJECT_ROOT
from tests.utils.jobs import TERMINAL, TINY_MNIST, submit, wait_for
from tests.utils.models import digit_png, wait_until_serving
from tests.utils.shapes import draw, png, shapes_zip
from tests.utils.sweeps import TINY_TRIAL, create_sweep, wait_sweep

pytestmark = [pytest.mark.service, pytest.mark.slow]

DOCUMENTS = [PROJECT_ROOT / "README.md", *sorted((PROJECT_ROOT / "docs").glob("*.md"))]
FENCE = re.compile(r"^```(?:bash|sh|shell|console)\n(.*?)^```", re.M | re.S)
# curl as the examples call it, plus one line per response with its status (the examples stay untouched)
CURL = "curl() { command curl -sS --max-time 120 --write-out '\\n@@HTTP %{http_code}\\n' \"$@\"; }\n"
LONG_JOB = {**TINY_MNIST, "hyperparameters": {**TINY_MNIST["hyperparameters"], "epochs": 200}}


@dataclass(frozen=True)
class Example:
    where: str  # file:line, for the failure message
    command: str


def logical_lines(block: str) -> Iterator[tuple[int, str]]:
    """(line offset, command) of a fenced block: continuation lines and multi-line quoted bodies joined,
    comments dropped."""
    pending, first = "", 0
    for number, line in enumerate(block.splitlines()):
        if not pending and (not line.strip() or line.lstrip().startswith("#")):
            continue
        if not pending:
            first = number
        pending += line + "\n"
        if pending.rstrip().endswith("\\"):
            continue
        try:
            shlex.split(pending, comments=True)
        except ValueError:  # an open quote: a JSON body goes on
            continue
        yield first, pending.strip()
        pending = ""


def talks_to_the_api(command: str) -> bool:
    return "$TRAINSERVE_URL" in command or re.search(r"(^|[;(/\s])trainserve\s", command) is not None


def examples() -> list[Example]:
    found = []
    for path in DOCUMENTS:
        text = path.read_text()
        for block in FENCE.finditer(text):
            line = text.count("\n", 0, block.start(1)) + 1
            for offset, command in logical_lines(block.group(1)):
                if talks_to_the_api(command):
                    found.append(Example(f"{path.name}:{line + offset}", command))
    return found


def test_the_extraction_finds_the_examples_and_keeps_their_json_bodies_whole():
    found = examples()
    assert len(found) >= 35, [e.command for e in found]
    sweep = next(e.command for e in found if "/v1/sweeps -H" in e.command and "cats_dogs" in e.command)
    assert sweep.rstrip().endswith('"max_parallel": 2}\'')  # the body's four lines are one command
    assert not any("localhost:8000" in e.command for e in found)  # the URL comes from the environment
    curls = [e for e in found if e.command.startswith("curl")]
    assert all("Authorization: Bearer $TRAINSERVE_API_KEY" in e.command for e in curls), \
        [e.where for e in curls if "Authorization" not in e.command]


# ---------------------------------------------------------------- the objects the examples act on


def write_files(folder: Path) -> None:
    """The files the examples upload: digits, a photo, a zip of class folders, a CSV with a price column."""
    (folder / "my_digit.png").write_bytes(digit_png(3))
    Image.open(io.BytesIO(digit_png(7))).convert("RGB").save(folder / "another.jpg", quality=90)
    draw("circle", random.Random(5)).convert("RGB").save(folder / "new_photo.jpg", quality=90)
    (folder / "products.zip").write_bytes(shapes_zip(per_class=8, folder=None, only=("circle", "square")))
    rows = ["area,rooms,price", *(f"{a},{r},{2.0 * a + 10.0 * r + 5.0}" for a in range(40, 200, 7) for r in (1, 3, 5))]
    (folder / "houses.csv").write_text("\n".join(rows) + "\n")


def served_model(service: httpx.Client, job: dict) -> int:
    """The model version a succeeded job registered."""
    deadline = time.monotonic() + 15
    while True:
        models = service.get("/v1/models", params={"dataset": job["dataset"]}).json()["data"]
        found = [m["id"] for m in models if m["job_id"] == job["id"]]
        if found:
            return found[0]
        assert time.monotonic() < deadline, f"job {job['id']} registered no model"
        time.sleep(0.2)


def train_and_serve(service: httpx.Client, request: dict) -> int:
    job = wait_for(service, submit(service, request)["id"], "succeeded", timeout_s=300)
    model_id = served_model(service, job)
    assert service.post(f"/v1/models/{model_id}/promote").status_code == 200
    wait_until_serving(service, job["dataset"], model_id)
    return model_id


@dataclass
class Objects:
    """Real objects behind $JOB_ID, $MODEL_ID, $SWEEP_ID and $AT, and the ones made for one command."""

    service: httpx.Client
    env: dict[str, str]
    victim: str | None = None  # a job an example cancels, which a later one deletes

    def running_job(self) -> dict[str, str]:
        self.victim = submit(self.service, LONG_JOB)["id"]
        return {"JOB_ID": self.victim}

    def deletable_job(self) -> dict[str, str]:
        victim = self.victim or self.running_job()["JOB_ID"]
        self.service.post(f"/v1/jobs/{victim}/cancel")
        wait_for(self.service, victim, TERMINAL)
        self.victim = None
        return {"JOB_ID": victim}

    def running_sweep(self) -> dict[str, str]:
        sweep = create_sweep(self.service, {"model": "mlp", "dataset": "mnist", "max_parallel": 1,
                                            "hyperparameters": {**TINY_TRIAL, "epochs": 200},
                                            "search": {"grid": {"lr": [0.1, 0.01]}}})
        return {"SWEEP_ID": sweep["id"]}

    def products_model(self) -> dict[str, str]:
        train_and_serve(self.service, {"model": "cnn", "dataset": "products",
                                       "hyperparameters": {"image_size": 32, "epochs": 1, "batch_size": 8}})
        return {}

    def mnist_feedback(self) -> dict[str, str]:
        """A kept, corrected mnist prediction: the feedback set an include_feedback job snapshots."""
        answer = self.service.post("/v1/predict/mnist", data={"keep": "true"},
                                   files=[("files", ("one.png", digit_png(1)))]).json()
        prediction_id = answer["predictions"][0]["prediction_id"]
        deadline = time.monotonic() + 15
        while self.service.post(f"/v1/predictions/{prediction_id}/feedback", json={"label": "1"}).status_code == 404:
            assert time.monotonic() < deadline, "the prediction log never wrote the row"
            time.sleep(0.1)  # the log writes its rows in batches, off the request path
        return {}

    def houses_model(self) -> dict[str, str]:
        # a table is answered by its best succeeded job (no registry step)
        wait_for(self.service, submit(self.service, {"model": "linear_regression", "dataset": "houses",
                                                     "hyperparameters": {"epochs": 2}})["id"], "succeeded")
        return {}


# which object a command needs, by what it does (the first pattern that matches wins)
PREPARE: list[tuple[str, Callable[[Objects], dict[str, str]]]] = [
    (r"(/jobs/\$JOB_ID/cancel|trainserve cancel \$JOB_ID)", Objects.running_job),
    (r"-X DELETE \$TRAINSERVE_URL/v1/jobs/\$JOB_ID", Objects.deletable_job),
    (r"/sweeps/\$SWEEP_ID/cancel", Objects.running_sweep),
    (r"/v1/predict/products", Objects.products_model),
    (r"/v1/predict/houses/rows", Objects.houses_model),
    (r'"include_feedback": true', Objects.mnist_feedback),
]


def cancel_what_it_started(service: httpx.Client, jobs_before: set[str], sweeps_before: set[str]) -> None:
    """An example's own trainings (a 3-epoch cnn, a 20-trial sweep) would hold the worker for minutes."""
    for sweep in service.get("/v1/sweeps", params={"limit": 200}).json()["data"]:
        if sweep["id"] not in sweeps_before and sweep["status"] in ("queued", "running"):
            service.post(f"/v1/sweeps/{sweep['id']}/cancel")
    for job in service.get("/v1/jobs", params={"limit": 200}).json()["data"]:
        if job["id"] not in jobs_before and job["status"] in ("queued", "running"):
            service.post(f"/v1/jobs/{job['id']}/cancel")
            wait_for(service, job["id"], TERMINAL)


def listed_ids(service: httpx.Client) -> tuple[set[str], set[str]]:
    jobs = {j["id"] for j in service.get("/v1/jobs", params={"limit": 200}).json()["data"]}
    sweeps = {s["id"] for s in service.get("/v1/sweeps", params={"limit": 200}).json()["data"]}
    return jobs, sweeps


def run(example: Example, env: dict[str, str], cwd: Path) -> str | None:
    """Run one example in bash; None when it did what it says, else what went wrong."""
    done = subprocess.run(["bash", "-eo", "pipefail", "-c", CURL + example.command], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=300)
    statuses = re.findall(r"^@@HTTP (\d{3})$", done.stdout, re.M)
    if done.returncode != 0 or any(not s.startswith("2") for s in statuses) or \
            (example.command.startswith("curl") and not statuses):
        return (f"{example.where}: {example.command}\n  exit {done.returncode}, HTTP {statuses}\n"
                f"  {(done.stdout[-600:] + done.stderr[-600:]).strip()}")
    return None


def test_every_api_example_in_the_readme_and_docs_runs_as_pasted(service, api_url, admin_key, tmp_path):
    write_files(tmp_path)
    (tmp_path / ".venv").mkdir()
    (tmp_path / ".venv" / "bin").symlink_to(Path(sys.executable).parent)  # `.venv/bin/trainserve env`
    config = tmp_path / "config.toml"
    config.write_text(f'url = "{api_url}"\napi_key = "{admin_key}"\n')  # as the first `make run` writes it

    job = wait_for(service, submit(service, TINY_MNIST)["id"], "succeeded")
    model_id = served_model(service, job)
    assert service.post(f"/v1/models/{model_id}/promote").status_code == 200
    wait_until_serving(service, "mnist", model_id)
    time.sleep(1.1)  # $AT has whole seconds: a time after the promotion, not its truncated second
    at = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")  # a time when that model served
    sweep = wait_sweep(service, create_sweep(service, {"model": "mlp", "dataset": "mnist", "max_parallel": 2,
                                                       "hyperparameters": TINY_TRIAL,
                                                       "search": {"grid": {"lr": [0.1, 0.01]}}})["id"])
    env = {**os.environ, "TRAINSERVE_URL": api_url, "TRAINSERVE_API_KEY": admin_key, "TRAINSERVE_CONFIG": str(config),
           "JOB_ID": job["id"], "MODEL_ID": str(model_id), "SWEEP_ID": sweep["id"], "AT": at, "COLUMNS": "160",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"}
    objects = Objects(service, env)

    failures = []
    for example in examples():
        extra = next((prepare(objects) for pattern, prepare in PREPARE if re.search(pattern, example.command)), {})
        before = listed_ids(service)
        failure = run(example, {**env, **extra}, tmp_path)
        if failure:
            failures.append(failure)
        cancel_what_it_started(service, *before)
    assert not failures, "\n\n".join(failures)
