"""The `trainserve` command against the real service: exit codes scripts rely on, the API's own sentences."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from importlib.metadata import entry_points

import pytest
from PIL import Image

from tests.utils.jobs import LONG_MNIST, TINY_LINEAR, TINY_MNIST, submit, wait_for
from tests.utils.models import digit_png, predict

pytestmark = pytest.mark.service


@pytest.fixture(autouse=True)
def _key_in_the_environment(monkeypatch, admin_key):
    """The command finds its key as a user's shell would give it: TRAINSERVE_API_KEY."""
    monkeypatch.setenv("TRAINSERVE_API_KEY", admin_key)


def trainserve(api_url: str, *args: str, timeout: float = 120, **popen) -> subprocess.CompletedProcess:
    """Run the command as a user would, with the server named in the environment."""
    env = {**os.environ, "TRAINSERVE_URL": api_url, "COLUMNS": "160"}
    return subprocess.run([sys.executable, "-m", "client", *args], env=env, capture_output=True, text=True,
                          timeout=timeout, **popen)


def _sets(hp: dict) -> list[str]:
    return [arg for k, v in hp.items() for arg in ("--set", f"{k}={v}".replace(" ", ""))]


def test_the_command_is_installed_as_trainserve():
    assert any(e.name == "trainserve" and e.value == "client.cli:main" for e in entry_points(group="console_scripts"))


def test_train_watch_follows_the_job_to_its_end_and_prints_the_final_metrics(api_url, worker):
    done = trainserve(api_url, "train", "mlp", "mnist", *_sets(TINY_MNIST["hyperparameters"]), "--name", "cli",
                      "--watch")
    assert done.returncode == 0, done.stderr + done.stdout
    assert "succeeded" in done.stdout
    assert "final metrics" in done.stdout and "test accuracy" in done.stdout
    assert "val acc" in done.stdout  # the per-epoch table
    job_id = done.stdout.split()[1]
    listed = trainserve(api_url, "jobs", "--limit", "5")
    assert listed.returncode == 0 and job_id in listed.stdout


def test_a_bad_hyperparameter_exits_1_with_the_apis_sentence(api_url, client):
    refused = trainserve(api_url, "train", "mlp", "mnist", "--set", "lr=100")
    said = client.post("/v1/jobs", json={"model": "mlp", "dataset": "mnist", "hyperparameters": {"lr": 100}})
    assert said.status_code == 422
    assert refused.returncode == 1
    assert f"hyperparameters.lr: {said.json()['detail'][0]['msg']}" in " ".join(refused.stderr.split())
    assert "Traceback" not in refused.stderr


def test_include_feedback_is_sent_and_its_refusal_is_the_apis_sentence(api_url):
    refused = trainserve(api_url, "train", "linear_regression", "synthetic_linear", "--include-feedback")
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    said = " ".join(refused.stderr.split())
    assert "include_feedback: feedback is for image classification datasets" in said, said


def test_refusals_and_an_unreachable_server_have_their_own_exit_codes(api_url, service):
    job = wait_for(service, submit(service, TINY_MNIST)["id"], "succeeded")
    finished = trainserve(api_url, "cancel", job["id"])
    assert finished.returncode == 1 and "only queued or running jobs can be cancelled" in finished.stderr
    unknown = trainserve(api_url, "watch", "no-such-job")
    assert unknown.returncode == 1 and "'no-such-job' not found" in unknown.stderr
    unreachable = trainserve("http://127.0.0.1:9", "jobs")
    assert unreachable.returncode == 3 and "cannot reach the trainserve API at http://127.0.0.1:9" in unreachable.stderr
    watched = trainserve(api_url, "watch", job["id"])  # a finished job: its table, then its outcome
    assert watched.returncode == 0 and "succeeded" in watched.stdout


def test_plots_saves_the_pngs_and_predict_labels_files(api_url, service, tmp_path):
    job = wait_for(service, submit(service, TINY_MNIST)["id"], "succeeded")
    plots = tmp_path / "plots"
    saved = trainserve(api_url, "plots", job["id"], "--out", str(plots))
    assert saved.returncode == 0, saved.stderr
    assert sorted(p.name for p in plots.iterdir()) == ["confusion_matrix.png", "loss.png", "metric.png",
                                                       "mistakes.png"]
    assert (plots / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    deadline = time.monotonic() + 15  # the API notices a newly registered model within a second or so
    while predict(service, "mnist", [("d.png", digit_png())]).status_code != 200:
        assert time.monotonic() < deadline, "no mnist model serves"
        time.sleep(0.2)
    (tmp_path / "seven.png").write_bytes(digit_png(7))
    Image.new("RGB", (64, 64), "white").save(tmp_path / "blank.png")  # nothing to read: abstains
    labelled = trainserve(api_url, "predict", "mnist", str(tmp_path / "seven.png"), str(tmp_path / "blank.png"),
                          "--top-k", "2")
    assert labelled.returncode == 0, labelled.stderr
    assert "seven.png" in labelled.stdout and "%" in labelled.stdout
    assert "blank.png" in labelled.stdout and "abstained" in labelled.stdout
    missing = trainserve(api_url, "predict", "mnist", str(tmp_path / "nope.png"))
    assert missing.returncode == 2 and "does not exist" in missing.stderr


@pytest.fixture
def ctrl_c_reaches_children():
    """Children get Ctrl-C as a terminal's foreground job does. A shell without job control starts a
    background job (`make test &`, nohup) with SIGINT ignored, every child inherits that, and a Python
    started with SIGINT ignored never raises KeyboardInterrupt: handled here, it is reset at exec."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_ctrl_c_detaches_without_cancelling(api_url, service, ctrl_c_reaches_children):
    env = {**os.environ, "TRAINSERVE_URL": api_url}
    # a job that outlives the test: a short one could end before the Ctrl-C, and the client exit 0
    process = subprocess.Popen([sys.executable, "-m", "client", "train", "mlp", "mnist",
                                *_sets(LONG_MNIST["hyperparameters"]), "--watch"],
                               env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first_line = process.stdout.readline()
        job_id = first_line.split()[1]
        wait_for(service, job_id, "running")
        time.sleep(1.0)
        process.send_signal(signal.SIGINT)
        _, stderr = process.communicate(timeout=30)
        assert process.returncode == 130, stderr
        assert f"detached; job {job_id} keeps running" in stderr
        job = service.get(f"/v1/jobs/{job_id}").json()
        assert job["status"] == "running" and job["cancel_requested_at"] is None
    finally:
        process.kill()
        service.post(f"/v1/jobs/{job_id}/cancel")


def test_keys_create_list_and_revoke_through_the_admin_routes(api_url, client):
    made = trainserve(api_url, "keys", "create", "erin")
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert key.startswith("ts_") and "shown once" in made.stderr
    assert client.get("/v1/me", headers={"Authorization": f"Bearer {key}"}).json()["owner"] == "erin"
    key_id = made.stderr.split()[1]
    listed = trainserve(api_url, "keys", "list")
    assert listed.returncode == 0 and "erin" in listed.stdout and key not in listed.stdout
    assert trainserve(api_url, "keys", "revoke", key_id).returncode == 0
    assert client.get("/v1/me", headers={"Authorization": f"Bearer {key}"}).status_code == 401
    as_erin = subprocess.run([sys.executable, "-m", "client", "keys", "list"], capture_output=True, text=True,
                             env={**os.environ, "TRAINSERVE_URL": api_url, "TRAINSERVE_API_KEY": key})
    assert as_erin.returncode == 1 and "unknown or revoked" in as_erin.stderr


def test_jobs_shows_full_ids_on_a_narrow_terminal_and_a_regression_jobs_best_mse(api_url, service):
    job = wait_for(service, submit(service, TINY_LINEAR)["id"], "succeeded")
    env = {**os.environ, "TRAINSERVE_URL": api_url, "COLUMNS": "80"}
    listed = subprocess.run([sys.executable, "-m", "client", "jobs", "--limit", "5"], env=env, capture_output=True,
                            text=True, timeout=60)
    assert listed.returncode == 0, listed.stderr
    assert any(job["id"] in line for line in listed.stdout.splitlines()), listed.stdout  # whole, on one line
    wide = trainserve(api_url, "jobs", "--limit", "5")
    row = next(line for line in wide.stdout.splitlines() if job["id"] in line)
    best = service.get(f"/v1/jobs/{job['id']}").json()["best"]
    assert f"mse {best['metrics']['val_mse']:.4g}" in row, wide.stdout


def test_env_prints_the_exports_a_shell_can_eval(api_url, admin_key, tmp_path):
    config = tmp_path / "config.toml"
    config.write_text(f'url = "{api_url}"\napi_key = "{admin_key}"\n')
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAINSERVE_")}
    shell = subprocess.run(["bash", "-c", f'eval "$({sys.executable} -m client env)"; '
                                          'echo "$TRAINSERVE_URL $TRAINSERVE_API_KEY"'],
                           env={**env, "TRAINSERVE_CONFIG": str(config)}, capture_output=True, text=True, timeout=60)
    assert shell.returncode == 0, shell.stderr
    assert shell.stdout.split() == [api_url, admin_key]


def test_sweep_watch_on_a_2x2_grid_exits_0_with_the_leaderboard(api_url, service):
    done = trainserve(api_url, "sweep", "mlp", "mnist", "--grid", "lr=0.1,0.01", "--grid", "batch_size=32,64",
                      *_sets({"epochs": 1, "max_train_samples": 512, "max_eval_samples": 500, "hidden_sizes": [16]}),
                      "--max-parallel", "2", "--watch", timeout=300)
    assert done.returncode == 0, done.stderr + done.stdout
    sweep_id = done.stdout.split()[1]
    sweep = service.get(f"/v1/sweeps/{sweep_id}").json()
    assert sweep["status"] == "succeeded" and sweep["total"] == 4
    assert f"sweep {sweep_id}" in done.stdout and "val_accuracy" in done.stdout
    for trial in sweep["trials"]:  # every trial's full job id, best first
        assert trial["job_id"] in done.stdout
    order = [done.stdout.index(t["job_id"]) for t in sweep["trials"]]
    assert order == sorted(order)
    assert f"best: trial {sweep['best']['trial']}" in done.stdout
    shown = trainserve(api_url, "sweeps", sweep_id)
    assert shown.returncode == 0 and sweep["best"]["job_id"] in shown.stdout


def test_sweep_refuses_a_bad_grid_with_the_apis_sentence(api_url, client):
    refused = trainserve(api_url, "sweep", "mlp", "mnist", "--grid", "lr=100")
    assert refused.returncode == 1 and "search.grid.lr" in refused.stderr
    bad_usage = trainserve(api_url, "sweep", "mlp", "mnist", "--grid", "lr")
    assert bad_usage.returncode == 2 and "--grid takes name=value" in bad_usage.stderr
