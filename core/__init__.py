"""Shared, torch-free parts of the service: settings, database, ORM models, job payloads."""
