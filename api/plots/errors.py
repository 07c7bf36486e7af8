"""Why a plot cannot be drawn; api/errors.py gives it its HTTP status (404)."""
from __future__ import annotations


class NoSuchPlot(LookupError):
    """The plot is unknown, does not exist for this job or sweep, or does not exist yet: the sentence says which."""
