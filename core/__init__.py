"""Shared, torch-free parts of the service: settings, database, ORM rows (`core.orm`), errors and the services."""
