"""The predict route's handler: the key check, the path's checks, the endpoint, with no dependency solver.

FastAPI's request handler solved the route's one dependency (the key) and its one path parameter
through its general machinery: ~0.2 ms a request, the largest share of the API's own work around a
~1 ms prediction (bench/predict_latency.py --profile). This route class keeps everything FastAPI
builds from the declaration (the OpenAPI operation, the router's auth scheme, the 422 shape) and
serves requests with a handler that does the same checks directly. It refuses, at start-up, a route
that declares anything it would not check.
"""
from __future__ import annotations

from collections.abc import Callable, Coroutine
from typing import Any

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.routing import APIRoute

from api.auth import current_principal


class DirectRoute(APIRoute):
    """An APIRoute for `async def endpoint(request, <one str path parameter>)`, always behind the key check.

    Always: FastAPI builds a route's handler once as declared and once more per inclusion, with the
    including router's dependencies (ROUTERS in api/main.py add the key check there); a handler that
    checked the key only when it saw the dependency would serve the first build unkeyed.
    """

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        dependant = self.dependant  # FastAPI's reading of the declaration (with the router's dependencies)
        extra = [d.call for d in dependant.dependencies if d.call is not current_principal]
        if extra or len(dependant.path_params) != 1 or dependant.query_params or dependant.body_params \
                or dependant.header_params or dependant.cookie_params:
            raise TypeError(f"{self.path}: a DirectRoute takes the key check and one path parameter only "
                            f"(found dependencies {extra}); declare other parameters on an APIRoute")
        param = dependant.path_params[0]
        name, max_length = param.name, _max_length(param)
        endpoint = self.endpoint

        async def handler(request: Request) -> Response:
            await current_principal(request)  # sets request.state.principal, or 401
            value = request.path_params[name]
            if max_length is not None and len(value) > max_length:  # FastAPI's own error for Path(max_length=…)
                raise RequestValidationError([{
                    "type": "string_too_long", "loc": ("path", name), "input": value,
                    "msg": f"String should have at most {max_length} characters", "ctx": {"max_length": max_length}}])
            return await endpoint(request, value)

        return handler


def _max_length(param) -> int | None:
    for constraint in param.field_info.metadata:
        if getattr(constraint, "max_length", None) is not None:
            return constraint.max_length
    return None
