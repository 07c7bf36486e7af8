"""Logging for the API and the workers: one line per record, JSON when stderr is not a terminal (log
collectors parse it), plain text on a terminal; every record carries the job id being worked on."""
from __future__ import annotations

import json
import logging
import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timezone

JOB_ID: ContextVar[str | None] = ContextVar("job_id", default=None)

# third-party loggers whose INFO lines are chatter, not events: the ONNX exporter's optimizer passes
# ("No unused functions to remove", a dozen per export), and Celery's per-task "received" / "succeeded
# in …: {return value}" lines (our own worker logs each attempt). Their warnings and errors still show.
CHATTY_LOGGERS = ("onnxscript", "onnx_ir", "torch.onnx", "celery.worker.strategy", "celery.app.trace",
                  "celery.worker.consumer")


class JobIdFilter(logging.Filter):
    """Adds `job_id` (None outside a job) to every record."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.job_id = JOB_ID.get()
        return True


class JsonFormatter(logging.Formatter):
    """{"time", "level", "logger", "message", "job_id"[, "exception"]} on one line."""

    def format(self, record: logging.LogRecord) -> str:
        line = {"time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
                "level": record.levelname, "logger": record.name, "message": record.getMessage(),
                "job_id": getattr(record, "job_id", None), "process": record.process}
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str)


class _ServiceHandler(logging.StreamHandler):
    """Ours, so configuring twice replaces it instead of adding a second one (others' handlers stay)."""


def configure_logging(level: str | int = "INFO", *, json_lines: bool | None = None) -> None:
    """Put one handler on the root logger, on stderr (JSON unless stderr is a terminal)."""
    as_json = (not sys.stderr.isatty()) if json_lines is None else json_lines
    handler = _ServiceHandler(sys.stderr)
    handler.addFilter(JobIdFilter())
    handler.setFormatter(JsonFormatter() if as_json else logging.Formatter(
        "%(asctime)s %(levelname)s %(name)s [job %(job_id)s] %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [h for h in root.handlers if not isinstance(h, _ServiceHandler)] + [handler]
    root.setLevel(level.upper() if isinstance(level, str) else level)
    quiet_third_party(root.level)


def quiet_third_party(level: int) -> None:
    """Chatty libraries at WARNING unless debugging; their deprecation notices off (they are for our
    tests, which still see them, not for an operator's terminal); other warnings as one log line each."""
    for name in CHATTY_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if level <= logging.DEBUG else logging.WARNING)
    # e.g. torch.jit.trace/save's FutureWarning on every TorchScript export
    warnings.filterwarnings("ignore", category=FutureWarning, module=r"(torch|torchvision|onnx\w*)(\.|$)")
    warnings.filterwarnings("ignore", category=DeprecationWarning, module=r"(torch|torchvision|onnx\w*)(\.|$)")
    logging.captureWarnings(True)


@contextmanager
def job_context(job_id: str) -> Iterator[None]:
    """Records logged inside carry `job_id`."""
    token = JOB_ID.set(job_id)
    try:
        yield
    finally:
        JOB_ID.reset(token)
