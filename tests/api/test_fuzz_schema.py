"""Schemathesis fuzzes every operation of the OpenAPI schema with an API key, bounded in time:
no 5xx, and every response matches its documented schema (a private API, so fuzzed jobs stay there)."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from tests.utils.stack import Stack

pytestmark = pytest.mark.service

ST = Path(sys.executable).with_name("st")
# DELETE is left out (it could revoke the key the fuzzer sends); an event stream never ends by itself.
# Checked: it finds the offset overflow (issue 11) within the time budget when that fix is undone.
EXCLUDED = r"^/v1/jobs/\{job_id\}/events$"
# no 5xx, and the schema says what the routes do: every status, content type, header and body is
# documented, and a method a path does not take is a 405 whose Allow lists the ones it does.
# (positive_data_acceptance is off: a schema-valid dataset or preset name can still be unknown: 422.)
CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,"
          "response_schema_conformance,unsupported_method")


@pytest.mark.slow
def test_fuzzing_the_schema_finds_no_5xx_and_no_response_off_its_schema(tmp_path):
    # one worker: two threads make hypothesis trip a CPython 3.11 ast.parse error (SystemError, not our API)
    stack = Stack(tmp_path, extra_env={"MAX_QUEUED_JOBS_PER_OWNER": "20"})
    stack.start_redis()  # no worker: fuzzed jobs stay queued and never train
    try:
        stack.start_api()
        run = subprocess.run(
            [str(ST), "run", f"{stack.url}/openapi.json", "--header", f"Authorization: Bearer {stack.key}",
             "--checks", CHECKS, "--exclude-path-regex", EXCLUDED,
             "--exclude-method", "DELETE", "--max-examples", "15", "--max-time", "60", "--workers", "1",
             "--request-timeout", "20", "--seed", "11", "--phases", "examples,coverage,fuzzing",
             "--suppress-health-check", "all", "--no-color"],
            cwd=tmp_path,  # its cache and reports stay out of the checkout
            capture_output=True, text=True, timeout=240)
    finally:
        stack.close()
    assert run.returncode == 0, (run.stdout + run.stderr)[-8000:]
