"""The service's ORM classes; importing this package registers every table on Base.metadata."""
from core.models.base import Base, utcnow
from core.models.checkpoint import Checkpoint
from core.models.epoch_metric import EpochMetric
from core.models.job import TERMINAL_STATUSES, Job, JobStatus

__all__ = ["Base", "Checkpoint", "EpochMetric", "Job", "JobStatus", "TERMINAL_STATUSES", "utcnow"]
