"""Where the client finds the server and the key: flags, then the environment, then the config file."""
from __future__ import annotations

import httpx
import pytest

from client import ApiError, Client
from client.api import error_sentence
from client.config import DEFAULT_URL, load_config


@pytest.fixture
def clean_env(monkeypatch, tmp_path):
    for name in ("TRAINSERVE_URL", "TRAINSERVE_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("TRAINSERVE_CONFIG", str(tmp_path / "config.toml"))
    return tmp_path / "config.toml"


def test_flags_beat_the_environment_which_beats_the_file(clean_env, monkeypatch):
    assert load_config() == load_config(url=DEFAULT_URL)
    assert load_config().api_key is None
    clean_env.write_text('url = "http://file:1/"\napi_key = "from-file"\n')
    assert (load_config().url, load_config().api_key) == ("http://file:1", "from-file")
    monkeypatch.setenv("TRAINSERVE_URL", "http://env:2")
    monkeypatch.setenv("TRAINSERVE_API_KEY", "from-env")
    assert (load_config().url, load_config().api_key) == ("http://env:2", "from-env")
    assert (load_config(url="http://flag:3", api_key="k").url, load_config(api_key="k").api_key) == ("http://flag:3", "k")


def test_a_broken_config_file_is_named(clean_env):
    clean_env.write_text("url = ")
    with pytest.raises(ValueError, match="cannot read the config file .*config.toml"):
        load_config()


def test_the_key_goes_out_as_a_bearer_token_and_errors_are_the_apis_sentence(clean_env):
    seen = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers.get("authorization"))
        return httpx.Response(422, json={"detail": [{"field": "hyperparameters.lr", "msg": "must be ≤ 10 (got 100)"}]})

    # a stand-in server (no auth exists server-side yet): what goes over the wire is what is checked
    client = Client("http://testserver", api_key="s3cret", transport=httpx.MockTransport(handler))
    with pytest.raises(ApiError) as caught:
        client.submit("mlp", "mnist", {"lr": 100})
    assert seen == ["Bearer s3cret"]
    assert caught.value.status == 422 and str(caught.value) == "hyperparameters.lr: must be ≤ 10 (got 100)"
    plain = httpx.Response(404, json={"detail": "job 'x' not found"}, request=httpx.Request("GET", "http://t/v1/jobs/x"))
    assert error_sentence(plain) == "job 'x' not found"


def test_saving_a_new_url_keeps_the_saved_key(tmp_path, monkeypatch):
    from client.config import save_config, saved_key

    monkeypatch.setenv("TRAINSERVE_CONFIG", str(tmp_path / "config.toml"))
    save_config("http://127.0.0.1:8000", "ts_first")
    save_config("http://127.0.0.1:9000")  # a later start on another PORT
    assert saved_key() == "ts_first"
    assert load_config().url == "http://127.0.0.1:9000"
