"""Log lines are JSON off a terminal and carry the job id being worked on."""
from __future__ import annotations

import io
import json
import logging
import subprocess
import sys

from core.logs import JobIdFilter, JsonFormatter, job_context
from core.settings import PROJECT_ROOT


def test_a_record_inside_a_job_is_one_json_line_with_its_id():
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.addFilter(JobIdFilter())
    handler.setFormatter(JsonFormatter())
    log = logging.getLogger("trainserve.test-logs")
    log.addHandler(handler)
    log.propagate = False
    try:
        with job_context("job-123"):
            log.warning("epoch %d done", 2)
        log.warning("outside")
    finally:
        log.removeHandler(handler)
    inside, outside = (json.loads(line) for line in out.getvalue().splitlines())
    assert inside["job_id"] == "job-123" and inside["message"] == "epoch 2 done" and inside["level"] == "WARNING"
    assert outside["job_id"] is None


def test_service_logging_keeps_third_party_chatter_and_deprecations_out_of_the_terminal():
    # a fresh interpreter: configure_logging changes process-wide logging and warning filters
    script = """
import logging, warnings
from core.logs import configure_logging
configure_logging("info", json_lines=False)
logging.getLogger("onnxscript.optimizer").info("Skipping constant folding")
logging.getLogger("celery.app.trace").info("Task succeeded in 1s: {...}")
logging.getLogger("onnxscript.optimizer").warning("an exporter warning still shows")
logging.getLogger("trainserve.worker").info("our own info line")
warnings.warn_explicit("`torch.jit.trace` is deprecated", FutureWarning, "trace.py", 1, module="torch.jit._trace")
warnings.warn("a warning of ours, as one log line", UserWarning)
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=PROJECT_ROOT, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.splitlines()
    assert not any("constant folding" in line or "Task succeeded" in line or "torch.jit" in line for line in lines)
    assert any("WARNING onnxscript.optimizer" in line and "still shows" in line for line in lines)
    assert any("INFO trainserve.worker" in line for line in lines)
    assert any("WARNING py.warnings" in line and "a warning of ours" in line for line in lines)
