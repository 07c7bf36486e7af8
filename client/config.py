"""Where the server is and which key to send: flags, then the environment, then a config file."""
from __future__ import annotations

import json
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

DEFAULT_URL = "http://127.0.0.1:8000"


@dataclass(frozen=True)
class ClientConfig:
    url: str
    api_key: str | None


def config_path() -> Path:
    """TRAINSERVE_CONFIG, else $XDG_CONFIG_HOME/trainserve/config.toml (~/.config/...)."""
    if os.environ.get("TRAINSERVE_CONFIG"):
        return Path(os.environ["TRAINSERVE_CONFIG"])
    base = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return base / "trainserve" / "config.toml"


def _read_file(path: Path) -> dict[str, str]:
    if not path.is_file():
        return {}
    try:
        data = tomllib.loads(path.read_text())
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"cannot read the config file {path}: {exc}") from None
    return {k: str(v) for k, v in data.items() if k in ("url", "api_key")}


def saved_key() -> str | None:
    """The API key in the config file, if any (the first `make run` writes it)."""
    return _read_file(config_path()).get("api_key")


def load_config(url: str | None = None, api_key: str | None = None) -> ClientConfig:
    """The first of: the arguments, TRAINSERVE_URL / TRAINSERVE_API_KEY, the config file, the default."""
    file = _read_file(config_path())
    url = url or os.environ.get("TRAINSERVE_URL") or file.get("url") or DEFAULT_URL
    key = api_key or os.environ.get("TRAINSERVE_API_KEY") or file.get("api_key") or None
    return ClientConfig(url=url.rstrip("/"), api_key=key)


def save_config(url: str, api_key: str | None = None) -> Path:
    """Write url (and api_key, when given) into the config file, other entries kept, readable by its owner only."""
    path = config_path()
    data = {**_read_file(path), "url": url, **({"api_key": api_key} if api_key else {})}
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:  # JSON strings are valid TOML basic strings
        out.write("".join(f"{k} = {json.dumps(v)}\n" for k, v in data.items()))
    os.chmod(path, 0o600)
    return path
