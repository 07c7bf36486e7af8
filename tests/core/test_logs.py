"""Log lines are JSON off a terminal and carry the job id being worked on."""
from __future__ import annotations

import io
import json
import logging

from core.logs import JobIdFilter, JsonFormatter, job_context


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
