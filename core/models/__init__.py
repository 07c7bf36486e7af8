"""The service's ORM classes; importing this package registers every table on Base.metadata."""
from core.models.api_key import ApiKey, Role
from core.models.attempt import AttemptEnd, JobAttempt
from core.models.base import Base, utcnow
from core.models.checkpoint import Checkpoint
from core.models.dataset import UploadedDataset
from core.models.epoch_metric import EpochMetric
from core.models.job import TERMINAL_STATUSES, Job, JobStatus
from core.models.model_version import ModelVersion, ServingEvent, ServingReason
from core.models.sweep import Sweep, SweepStatus

__all__ = ["ApiKey", "AttemptEnd", "Base", "Checkpoint", "EpochMetric", "Job", "JobAttempt", "JobStatus", "ModelVersion",
           "Role", "ServingEvent", "ServingReason", "Sweep", "SweepStatus", "TERMINAL_STATUSES", "UploadedDataset", "utcnow"]
