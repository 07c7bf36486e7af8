"""Training jobs over HTTP: submit, look, list, metrics, checkpoints, live events, cancel, delete."""
