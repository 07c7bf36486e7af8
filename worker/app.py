"""The Celery app of the workers: `celery -A worker.app worker`.

The app names the modules it loads (`include`); they import the app, never the reverse, so the
worker package has no import circle (an import-linter contract in pyproject.toml keeps it so).
Celery imports the included modules when a worker starts, before its first signal fires.
"""
from __future__ import annotations

from core.queue import make_celery

celery_app = make_celery(include=["worker.signals", "worker.tasks"])
