"""The predict route's handler checks the key and its path itself (in-process tier)."""
from __future__ import annotations

from typing import Annotated

import pytest
from fastapi import APIRouter, FastAPI, Path, Query, Request, Response
from fastapi.testclient import TestClient

from api.errors import install_error_handlers
from api.predict.direct_route import DirectRoute
from core.settings import Settings


def _app(router: APIRouter, **settings) -> FastAPI:
    app = FastAPI()
    install_error_handlers(app)
    app.state.settings = Settings(**settings)
    app.include_router(router)
    return app


def _router() -> APIRouter:
    router = APIRouter(prefix="/p", route_class=DirectRoute)

    @router.post("/{name}")
    async def endpoint(request: Request, name: Annotated[str, Path(max_length=4)]) -> Response:
        return Response(f"{request.state.principal.owner}:{name}")

    return router


def test_without_a_key_it_is_401_even_where_no_router_added_the_key_check(tmp_path):
    app = _app(_router(), database_url=f"sqlite:///{tmp_path / 'db.sqlite'}")
    answer = TestClient(app).post("/p/abcd")
    assert answer.status_code == 401 and answer.headers["www-authenticate"] == "Bearer"
    assert "Authorization: Bearer" in answer.json()["detail"]


def test_a_path_over_its_max_length_is_fastapis_own_422():
    client = TestClient(_app(_router(), auth="off"))
    assert client.post("/p/abcd").text == "local:abcd"
    answer = client.post("/p/abcde")
    assert answer.status_code == 422, answer.text
    detail = answer.json()["detail"][0]
    assert detail["type"] == "string_too_long" and detail["loc"] == ["path", "name"]


def test_a_route_declaring_what_the_handler_would_not_check_is_refused_at_start_up():
    router = APIRouter(prefix="/p", route_class=DirectRoute)
    with pytest.raises(TypeError, match="DirectRoute takes the key check and one path parameter only"):
        @router.post("/{name}")
        async def endpoint(request: Request, name: str, top_k: Annotated[int, Query()] = 3) -> Response:
            return Response(name)
