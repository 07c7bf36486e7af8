"""Predictions over HTTP: images to the serving model of a dataset, rows to the best table model."""
