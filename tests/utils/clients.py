"""HTTP clients on the service under test that send an API key and record every JSON body they get,
so a session-end check can walk them all for server internals (absolute paths)."""
from __future__ import annotations

import json
from typing import Any

import httpx

# (request line, parsed JSON body) of every JSON response the suite's service clients received
RECORDED: list[tuple[str, Any]] = []


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def _record(response: httpx.Response) -> None:
    if "json" not in response.headers.get("content-type", ""):
        return
    response.read()
    try:
        RECORDED.append((f"{response.request.method} {response.request.url.path}", json.loads(response.content)))
    except ValueError:
        RECORDED.append((f"{response.request.method} {response.request.url.path}", response.text))


def api_client(base_url: str, key: str | None, **kwargs: Any) -> httpx.Client:
    """An httpx.Client on the API that sends `key` and records JSON responses."""
    kwargs.setdefault("timeout", 60)
    headers = {**(bearer(key) if key else {}), **kwargs.pop("headers", {})}
    return httpx.Client(base_url=base_url, headers=headers, event_hooks={"response": [_record]}, **kwargs)


def strings(value: Any) -> list[str]:
    """Every string inside a JSON value, keys included."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for k, v in value.items() for s in (k, *strings(v))]
    if isinstance(value, list):
        return [s for v in value for s in strings(v)]
    return []


def leaks(needles: list[str]) -> list[tuple[str, str]]:
    """(request, string) of every recorded string that contains one of the server's folders."""
    return [(request, s[:300]) for request, body in RECORDED for s in strings(body)
            if any(n in s for n in needles)]
