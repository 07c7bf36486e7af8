"""`python -m ml` as a user runs it: one line per epoch, then one JSON object; bad configs exit 2."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ml.cli import split_choices

REPO = Path(__file__).resolve().parents[2]


def ml(*args: str, data_dir: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "DATA_DIR": str(data_dir), "ML_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "ml", *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


def test_train_prints_epochs_then_json(tmp_path, data_dir):
    proc = ml("train", "--model", "mlp", "--dataset", "mnist", "--epochs", "2",
              "--set", "max_train_samples=300", "--set", "hidden_sizes=[32,16]", "--set", "val_fraction=0.02",
              "--out", str(tmp_path), data_dir=data_dir)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[0].startswith("epoch   1") and lines[1].startswith("epoch   2")
    result = json.loads(lines[-1])
    assert result["config"]["hyperparameters"]["hidden_sizes"] == [32, 16]
    assert [e["epoch"] for e in result["epochs"]] == [1, 2]
    assert all(e["samples_per_second"] > 0 for e in result["epochs"])
    assert 0.3 < result["test"]["accuracy"] <= 1
    assert Path(result["last_checkpoint"]).name == "epoch-002.pt"


def test_invalid_config_exits_2_with_the_field(tmp_path, data_dir):
    proc = ml("train", "--model", "mlp", "--dataset", "mnist", "--set", "lr=-1", "--out", str(tmp_path),
              data_dir=data_dir)
    assert proc.returncode == 2
    assert "hyperparameters.lr: must be a number > 0 and ≤ 10 (got -1)" in proc.stderr


def test_grid_values_keep_lists_whole():
    assert split_choices("0.1,0.01") == [0.1, 0.01]
    assert split_choices("[64],[128,64]") == [[64], [128, 64]]
    assert split_choices("adam,sgd") == ["adam", "sgd"]


def test_grid_trains_every_combination_and_names_the_best(tmp_path, data_dir, capsys, one_thread):
    from ml.cli import main

    code = main(["grid", "--model", "softmax_regression", "--dataset", "mnist", "--epochs", "1",
                 "--set", "max_train_samples=300", "--set", "max_eval_samples=300",
                 "--grid", "lr=0.5,0.000001", "--grid", "batch_size=32,64",
                 "--out", str(tmp_path), "--data-dir", str(data_dir)])
    assert code == 0
    lines = capsys.readouterr().out.strip().splitlines()
    summary = json.loads(lines[-1])
    assert len(summary["runs"]) == 4
    assert summary["best"]["overrides"]["lr"] == 0.5  # a near-zero lr cannot win
    assert any(line.rstrip().endswith("*") for line in lines)  # the table marks the best
