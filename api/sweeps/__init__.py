"""Hyperparameter sweeps over HTTP: create, look, list, cancel, live events."""
