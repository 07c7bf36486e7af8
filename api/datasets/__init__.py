"""Uploaded datasets over HTTP: upload, list, look, delete."""
