"""The model registry over HTTP: registered model versions ('model' alone means a net)."""
