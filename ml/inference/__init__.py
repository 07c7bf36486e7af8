"""Serving-side preprocessing and prediction: uploads in, class probabilities out."""
from ml.inference.decode import decode_upload
from ml.inference.predictor import PREPROCESSING_VERSION, Prediction, Predictor, set_inference_threads

__all__ = ["PREPROCESSING_VERSION", "Prediction", "Predictor", "decode_upload", "set_inference_threads"]
