"""The OpenAPI schema says what the routes do: a wrong method is a 405 listing the methods the path
takes, `/v1/models/rollback` is not a model id, and admin-only routes document their 403."""
from __future__ import annotations

import pytest
from fastapi.routing import iter_route_contexts

from api.auth import require_admin
from tests.utils.clients import api_client

pytestmark = pytest.mark.service


def _documented(client, template: str) -> str:
    return ", ".join(sorted(m.upper() for m in client.get("/openapi.json").json()["paths"][template]))


@pytest.mark.parametrize("method, path, template", [
    ("OPTIONS", "/v1/jobs", "/v1/jobs"),  # Starlette said `Allow: POST` (the first route that matched)
    ("PUT", "/v1/jobs/some-id", "/v1/jobs/{job_id}"),
    ("OPTIONS", "/v1/datasets", "/v1/datasets"),
    ("GET", "/v1/models/rollback", "/v1/models/rollback"),  # was a 422: 'rollback' is not an integer model id
])
def test_a_method_a_path_does_not_take_is_a_405_listing_every_one_it_does(client, method, path, template):
    response = client.request(method, path)
    assert response.status_code == 405, response.text
    assert response.headers["allow"] == _documented(client, template)
    assert response.json() == {"detail": "Method Not Allowed"}


def test_a_model_id_that_is_not_a_number_is_no_route(client):
    assert client.get("/v1/models/rollbacks").status_code == 404
    unknown = client.get("/v1/models/123456789")
    assert unknown.status_code == 404 and "123456789" in unknown.json()["detail"]


def _depends_on(dependant, call) -> bool:
    return any(d.call is call or _depends_on(d, call) for d in dependant.dependencies)


def test_every_admin_only_route_documents_its_403(api_url, make_key):
    from api.main import create_app  # here, not at collection: importing api.main builds an app (as tests/core/test_keys.py)

    app = create_app()
    schema = app.openapi()
    admin_only = [(c.path_format, m.lower()) for c in iter_route_contexts(app.routes)
                  if getattr(c, "dependant", None) is not None and _depends_on(c.dependant, require_admin)
                  for m in c.methods]
    assert ("/v1/keys", "get") in admin_only
    # promote and rollback answer 403 too: a built-in dataset's serving is changed by admins only (ServingNotYours)
    for path, method in [*admin_only, ("/v1/models/{model_id}/promote", "post"), ("/v1/models/rollback", "post")]:
        assert "403" in schema["paths"][path][method]["responses"], (path, method)
    with api_client(api_url, make_key("conformance-user")) as user:
        assert user.get("/v1/keys").status_code == 403
        refused = user.post("/v1/models/rollback", json={"dataset": "mnist", "at": "2026-01-01T00:00:00Z"})
        assert refused.status_code == 403, refused.text
