"""Configuration provider: EdgeX common configuration and this service's own, from core-keeper
(4.x, `keeper.http://host:59890`) or Consul (3.x, `consul.http://host:8500`).

As EdgeX services do: wait until core-common-config-bootstrapper has published the common
configuration, read its `all-services` and `app-services` trees, then read this service's private
tree (seeded from the local file on first start, or with -o/--overwrite). The private values win
over the common ones, and environment overrides win over both (config.build).
"""

from __future__ import annotations

import base64
import json
import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

from . import SERVICE_KEY
from .clients import EdgeXError, call
from .config import Config, ConfigError, build, read_file

log = logging.getLogger(__name__)

COMMON = "core-common-config-bootstrapper"
STEMS = {"keeper": "edgex/v4", "consul": "edgex/v3"}


class ProviderError(ConfigError):
    """The configuration provider is unusable; the text names it and why."""


class KeeperStore:
    """core-keeper's KV store. `tree` answers every key below `prefix/`, relative to it."""

    def __init__(self, url: str, session: requests.Session) -> None:
        self.url = url
        self.session = session

    def _key_url(self, key: str) -> str:
        return f"{self.url}/api/v3/kvs/key/{quote(key, safe='/')}"

    def tree(self, prefix: str) -> dict[str, Any]:
        response = call(self.session, "GET", self._key_url(prefix), ok=(200, 404),
                        params={"plaintext": "true"})
        if response.status_code == 404:
            return {}
        return {item["key"][len(prefix) + 1:]: item.get("value")
                for item in response.json().get("response") or []
                if item["key"].startswith(prefix + "/")}

    def value(self, key: str) -> Any:
        response = call(self.session, "GET", self._key_url(key), ok=(200, 404),
                        params={"plaintext": "true"})
        if response.status_code == 404:
            return None
        found = [item.get("value") for item in response.json().get("response") or []
                 if item["key"] == key]
        return found[0] if found else None

    def put_tree(self, prefix: str, data: Mapping[str, Any]) -> None:
        call(self.session, "PUT", self._key_url(prefix), params={"flatten": "true"},
             json={"value": _lists_as_json(data)})


class ConsulStore:
    """Consul's KV store, with the same methods as KeeperStore."""

    def __init__(self, url: str, session: requests.Session) -> None:
        self.url = url
        self.session = session

    def _get(self, key: str, recurse: bool) -> list[dict[str, Any]]:
        params = {"recurse": "true"} if recurse else {}
        response = call(self.session, "GET", f"{self.url}/v1/kv/{quote(key, safe='/')}",
                        ok=(200, 404), params=params)
        return [] if response.status_code == 404 else response.json()

    def tree(self, prefix: str) -> dict[str, Any]:
        return {item["Key"][len(prefix) + 1:]: _consul_value(item)
                for item in self._get(prefix + "/", recurse=True)
                if item.get("Value") is not None}

    def value(self, key: str) -> Any:
        found = [_consul_value(item) for item in self._get(key, recurse=False) if item["Key"] == key]
        return found[0] if found else None

    def put_tree(self, prefix: str, data: Mapping[str, Any]) -> None:
        for key, value in _flatten(prefix, _lists_as_json(data)).items():
            text = str(value).lower() if isinstance(value, bool) else str(value)
            call(self.session, "PUT", f"{self.url}/v1/kv/{quote(key, safe='/')}",
                 data=text.encode())


Store = KeeperStore | ConsulStore


def _consul_value(item: dict[str, Any]) -> str:
    return base64.b64decode(item["Value"]).decode()


def _lists_as_json(data: Mapping[str, Any]) -> dict[str, Any]:
    # Both stores keep one scalar per key; a list (Inference.Bindings, Actuations) is kept whole.
    return {key: _lists_as_json(value) if isinstance(value, Mapping)
            else json.dumps(value) if isinstance(value, list) else value
            for key, value in data.items()}


def _flatten(prefix: str, data: Mapping[str, Any]) -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, Mapping):
            flat.update(_flatten(f"{prefix}/{key}", value))
        else:
            flat[f"{prefix}/{key}"] = value
    return flat


def nested(flat: Mapping[str, Any]) -> dict[str, Any]:
    """{"MessageBus/Host": "x"} -> {"MessageBus": {"Host": "x"}}; JSON lists are read back."""
    tree: dict[str, Any] = {}
    for path, value in sorted(flat.items()):
        *parents, leaf = [part for part in path.split("/") if part]
        node = tree
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        node[leaf] = _list_or_value(value)
    return tree


def _list_or_value(value: Any) -> Any:
    if isinstance(value, str) and value.startswith("["):
        try:
            decoded = json.loads(value)
        except ValueError:
            return value
        if isinstance(decoded, list):
            return decoded
    return value


def connect(provider: str, session: requests.Session | None = None) -> tuple[Store, str]:
    """The store a -cp value names, and the key stem of its EdgeX version."""
    kind, _, url = provider.partition(".")
    if kind not in STEMS or not url.startswith(("http://", "https://")):
        raise ProviderError(f"configuration provider {provider!r} is not keeper.http://HOST:PORT "
                            "or consul.http://HOST:PORT")
    session = session or requests.Session()
    store = KeeperStore(url.rstrip("/"), session) if kind == "keeper" else ConsulStore(
        url.rstrip("/"), session)
    return store, STEMS[kind]


def wait_for_common_config(store: Store, stem: str,
                           environ: Mapping[str, str]) -> None:
    """Wait as EdgeX services do: up to EDGEX_STARTUP_DURATION, every EDGEX_STARTUP_INTERVAL."""
    key = f"{stem}/{COMMON}/IsCommonConfigReady"
    try:
        patience = float(environ.get("EDGEX_STARTUP_DURATION", "60"))
        interval = float(environ.get("EDGEX_STARTUP_INTERVAL", "1"))
    except ValueError:
        raise ProviderError("EDGEX_STARTUP_DURATION and EDGEX_STARTUP_INTERVAL must be seconds") from None
    deadline = time.monotonic() + patience
    while True:
        try:
            ready = str(store.value(key)).lower() == "true"
            reason = f"{key} is not true yet"
        except EdgeXError as exc:
            ready, reason = False, str(exc)
        if ready:
            return
        if time.monotonic() >= deadline:
            raise ProviderError(f"configuration provider {store.url}: common configuration not ready "
                                f"after {patience:.0f}s (EDGEX_STARTUP_DURATION): {reason}")
        log.info("waiting for the common configuration: %s", reason)
        time.sleep(interval)


def load_from_provider(path: Path, provider: str, *, overwrite: bool = False,
                       environ: Mapping[str, str] = os.environ) -> Config:
    """The service configuration from common config, the provider's private copy, and env."""
    store, stem = connect(provider)
    wait_for_common_config(store, stem, environ)
    try:
        common = {**store.tree(f"{stem}/{COMMON}/all-services"),
                  **store.tree(f"{stem}/{COMMON}/app-services")}
        private_key = f"{stem}/{SERVICE_KEY}"
        private = store.tree(private_key)
        if overwrite or not private:
            data = read_file(path)
            store.put_tree(private_key, data)
            log.info("stored %s in the configuration provider under %s", path, private_key)
        else:
            data = nested(private)
    except EdgeXError as exc:
        raise ProviderError(f"configuration provider: {exc}") from None
    log.info("configuration from %s: %d common keys, private keys under %s", store.url,
             len(common), private_key)
    return build(data, overlay=nested(common), environ=environ, source=f"{store.url} {private_key}")
