"""The prediction log over HTTP: list, look, download a kept input, give feedback, delete."""
