"""A Python client and the `trainserve` command for the trainserve API: HTTP only, no server code."""
from client.api import ApiError, Client

__all__ = ["ApiError", "Client"]
