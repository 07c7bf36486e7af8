"""Serving-side preprocessing and prediction: uploads in, class probabilities out."""
from ml.inference.decode import decode_upload

__all__ = ["decode_upload"]
