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
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests

from . import SERVICE_KEY
from .clients import EdgeXError, call, json_of
from .config import Config, ConfigError, build, read_file

log = logging.getLogger(__name__)

COMMON = "core-common-config-bootstrapper"
STEMS = {"keeper": "edgex/v4", "consul": "edgex/v3"}


class ProviderError(ConfigError):
    """The configuration provider is unusable; the text names it and why."""


@dataclass
class KeeperStore:
    """core-keeper's KV store. `tree` answers every key below `prefix/`, relative to it."""

    url: str
    session: requests.Session

    def _key_url(self, key: str) -> str:
        return f"{self.url}/api/v3/kvs/key/{quote(key, safe='/')}"

    def _get(self, key: str) -> list[dict[str, Any]]:
        """Every key starting with `key` (keeper matches prefixes), with its plain value."""
        response = call(self.session, "GET", self._key_url(key), ok=(200, 404),
                        params={"plaintext": "true"})
        # the spec names the list keyValues; core-keeper and EdgeX's own clients use response
        return [] if response.status_code == 404 else json_of(response).get("response") or []

    def tree(self, prefix: str) -> dict[str, Any]:
        return {item["key"][len(prefix) + 1:]: item.get("value") for item in self._get(prefix)
                if item["key"].startswith(prefix + "/")}

    def value(self, key: str) -> Any:
        return next((item.get("value") for item in self._get(key) if item["key"] == key), None)

    def put_tree(self, prefix: str, data: Mapping[str, Any]) -> None:
        call(self.session, "PUT", self._key_url(prefix), params={"flatten": "true"},
             json={"value": _lists_as_json(data)})


@dataclass
class ConsulStore:
    """Consul's KV store, with the same methods as KeeperStore."""

    url: str
    session: requests.Session

    def _get(self, key: str, recurse: bool) -> list[dict[str, Any]]:
        params = {"recurse": "true"} if recurse else {}
        response = call(self.session, "GET", f"{self.url}/v1/kv/{quote(key, safe='/')}",
                        ok=(200, 404), params=params)
        return [] if response.status_code == 404 else json_of(response)

    def tree(self, prefix: str) -> dict[str, Any]:
        return {item["Key"][len(prefix) + 1:]: _consul_value(item)
                for item in self._get(prefix + "/", recurse=True)
                if item.get("Value") is not None}

    def value(self, key: str) -> Any:
        return next((_consul_value(item) for item in self._get(key, recurse=False)
                     if item["Key"] == key), None)

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
    store_class = KeeperStore if kind == "keeper" else ConsulStore
    return store_class(url.rstrip("/"), session or requests.Session()), STEMS[kind]


def wait_for_common_config(store: Store, stem: str, environ: Mapping[str, str]) -> None:
    """Wait as EdgeX services do: up to EDGEX_STARTUP_DURATION, every EDGEX_STARTUP_INTERVAL."""
    key = f"{stem}/{COMMON}/IsCommonConfigReady"
    patience = _seconds(environ, "EDGEX_STARTUP_DURATION", "60")
    interval = _seconds(environ, "EDGEX_STARTUP_INTERVAL", "1")
    deadline = time.monotonic() + patience
    while True:
        try:
            if str(store.value(key)).lower() == "true":
                return
            reason = f"{key} is not true yet"
        except EdgeXError as exc:
            reason = str(exc)
        if time.monotonic() >= deadline:
            raise ProviderError(f"configuration provider {store.url}: common configuration not ready "
                                f"after {patience:.0f}s (EDGEX_STARTUP_DURATION): {reason}")
        log.info("waiting for the common configuration: %s", reason)
        time.sleep(interval)


def _seconds(environ: Mapping[str, str], name: str, default: str) -> float:
    text = environ.get(name, default)
    try:
        return float(text)
    except ValueError:
        raise ProviderError(f"{name}: {text!r} is not a number of seconds") from None


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
