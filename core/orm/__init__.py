"""The service's ORM classes; importing this package registers every table on Base.metadata."""
from core.orm.api_key import ApiKey, Role
from core.orm.attempt import AttemptEnd, JobAttempt
from core.orm.base import Base, utcnow
from core.orm.checkpoint import Checkpoint
from core.orm.dataset import UploadedDataset
from core.orm.epoch_metric import EpochMetric
from core.orm.job import Job, JobStatus
from core.orm.model_version import ModelVersion, ServingEvent, ServingReason
from core.orm.prediction import Prediction
from core.orm.sweep import Sweep, SweepStatus

__all__ = ["ApiKey", "AttemptEnd", "Base", "Checkpoint", "EpochMetric", "Job", "JobAttempt", "JobStatus", "ModelVersion",
           "Prediction", "Role", "ServingEvent", "ServingReason", "Sweep", "SweepStatus", "UploadedDataset", "utcnow"]
