"""The prediction log: every answered file remembered, people's feedback on it, its retention (torch-free)."""
from core.predictions.feedback import give_feedback
from core.predictions.log import LoggedPrediction, PredictionLog, input_key, media_type
from core.predictions.reads import Cursor, get_prediction, list_predictions
from core.predictions.retention import delete_expired, delete_inputs_of_job, delete_prediction

__all__ = ["Cursor", "LoggedPrediction", "PredictionLog", "delete_expired", "delete_inputs_of_job",
           "delete_prediction", "get_prediction", "give_feedback", "input_key", "list_predictions",
           "media_type"]
