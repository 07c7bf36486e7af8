"""API keys over HTTP (admin only) and GET /v1/me."""
