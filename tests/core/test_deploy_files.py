"""The production compose file and .env.example, checked by parsing (no Docker engine here)."""
from __future__ import annotations

import re

import yaml

from core.settings import PROJECT_ROOT, Settings


def _compose() -> dict:
    return yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())


def test_compose_has_the_services_wired_in_order():
    services = _compose()["services"]
    assert {"api", "worker", "redis", "postgres", "migrate"} <= set(services)
    assert services["migrate"]["command"][:3] == ["alembic", "upgrade", "head"]
    for name in ("api", "worker"):
        depends = services[name]["depends_on"]
        assert depends["migrate"]["condition"] == "service_completed_successfully"
        assert depends["redis"]["condition"] == "service_healthy"
        env = services[name]["environment"]
        assert env["DATABASE_URL"].startswith("postgresql+psycopg://") and "@postgres:" in env["DATABASE_URL"]
        assert env["REDIS_URL"].startswith("redis://:${REDIS_PASSWORD:?") and "@redis:" in env["REDIS_URL"]
    assert services["migrate"]["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_compose_worker_runs_one_training_per_gpu_over_all_the_hosts_gpus():
    worker = _compose()["services"]["worker"]
    devices = worker["deploy"]["resources"]["reservations"]["devices"]
    assert any("gpu" in d["capabilities"] and d["count"] == "all" for d in devices)
    assert worker["command"] == ["python", "-m", "worker"]  # WORKER_* settings, as on any other machine
    env = worker["environment"]
    assert env["WORKER_CONCURRENCY"] == "${WORKER_GPU_COUNT:-1}" and env["WORKER_GPUS"] == "${WORKER_GPUS:-0}"
    assert env["DATABASE_URL"] == _compose()["services"]["api"]["environment"]["DATABASE_URL"]  # the anchor merged


def test_compose_environment_names_only_real_settings():
    fields = {name.upper() for name in Settings.model_fields}
    for name in ("api", "worker", "migrate"):
        assert set(_compose()["services"][name]["environment"]) <= fields


def test_env_example_lists_every_setting_with_a_comment():
    lines = (PROJECT_ROOT / ".env.example").read_text().splitlines()
    listed = {}
    for i, line in enumerate(lines):
        m = re.match(r"^#?\s*([A-Z][A-Z0-9_]*)=", line)
        if m:
            listed[m.group(1)] = i
    missing = sorted(name.upper() for name in Settings.model_fields if name.upper() not in listed)
    assert missing == [], f".env.example lacks {missing}"
    unknown = sorted(set(listed) - {name.upper() for name in Settings.model_fields})
    assert unknown == [], f".env.example lists settings that do not exist: {unknown}"
    for name, i in listed.items():
        # the line above each setting explains it
        assert i > 0 and lines[i - 1].startswith("# ") and "=" not in lines[i - 1].split()[1], name


def test_compose_is_production_ready():
    """No default passwords, only the API published, a healthcheck on every long-running service."""
    text = (PROJECT_ROOT / "docker-compose.yml").read_text()
    services = _compose()["services"]
    assert "POSTGRES_PASSWORD: ${POSTGRES_PASSWORD:?" in text and "trainserve:trainserve@" not in text
    assert services["postgres"]["environment"]["POSTGRES_PASSWORD"].startswith("${POSTGRES_PASSWORD:?")
    assert "--requirepass" in " ".join(services["redis"]["command"])
    assert ":${REDIS_PASSWORD:?" in services["api"]["environment"]["REDIS_URL"]
    published = {name for name, s in services.items() if s.get("ports")}
    assert published == {"api"} and services["api"]["ports"] == ["${PORT:-8000}:8000"]
    for name, service in services.items():
        if service.get("restart") != "no":
            assert "test" in service["healthcheck"], f"{name} has no healthcheck"
    assert services["api"]["environment"]["AUTH"] == "keys" and services["api"]["environment"]["HOST"] == "0.0.0.0"


def test_compose_api_and_worker_share_no_volume_and_store_artifacts_in_s3():
    services = _compose()["services"]

    def named(service: dict) -> set[str]:
        return {v.split(":")[0] for v in service.get("volumes", []) if not v.startswith(("${", ".", "/"))}

    assert named(services["api"]) and named(services["worker"])
    assert named(services["api"]).isdisjoint(named(services["worker"]))
    for name in ("api", "worker"):
        env = services[name]["environment"]
        assert env["ARTIFACT_STORE_URL"].startswith("s3://") and env["S3_ENDPOINT_URL"] == "http://s3:8333"
        assert env["AWS_SECRET_ACCESS_KEY"].startswith("${S3_SECRET_KEY:?")
        assert services[name]["depends_on"]["s3-bucket"]["condition"] == "service_completed_successfully"
    assert services["s3-bucket"]["command"] == ["python", "-m", "core.artifacts", "ensure-bucket"]
    assert "test" in services["s3"]["healthcheck"] and not services["s3"].get("ports")
