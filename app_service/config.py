"""Service configuration: the EdgeX layout of res/configuration.yaml, as typed structs.

Sources, later ones winning: the struct defaults, the configuration file, the configuration
provider's common config (see provider.py), then EdgeX environment overrides (the key path
upper-cased with `.` and `-` turned into `_`, e.g. MESSAGEBUS_PORT or CLIENTS_CORE_DATA_HOST).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import msgspec
import yaml

from . import SERVICE_KEY


class ConfigError(Exception):
    """A configuration problem; the text names the key and why it is wrong."""


class Pascal(msgspec.Struct, rename="pascal", forbid_unknown_fields=False):
    pass


class Telemetry(Pascal):
    interval: str = "30s"
    metrics: dict[str, bool] = msgspec.field(default_factory=dict)
    tags: dict[str, str] = msgspec.field(default_factory=dict)


class StoreAndForward(Pascal):
    enabled: bool = False
    retry_interval: str = "5m"
    max_retry_count: int = 10


class InsecureSecret(Pascal):
    secret_name: str = ""
    secret_data: dict[str, str] = msgspec.field(default_factory=dict)


class Writable(Pascal):
    log_level: str = "INFO"
    store_and_forward: StoreAndForward = msgspec.field(default_factory=StoreAndForward)
    insecure_secrets: dict[str, InsecureSecret] = msgspec.field(default_factory=dict)
    telemetry: Telemetry = msgspec.field(default_factory=Telemetry)


class ServiceInfo(Pascal):
    host: str = "localhost"
    port: int = 59741
    server_bind_addr: str = ""
    startup_msg: str = "app-tflite-inference: TensorFlow Lite inference on EdgeX events"
    health_check_interval: str = "10s"
    max_request_size: int = 0
    request_timeout: str = "5s"
    enable_name_field_escape: bool = False


class MessageBusOptional(Pascal):
    client_id: str = SERVICE_KEY
    qos: int = 1
    keep_alive: int = 10
    retained: bool = False
    auto_reconnect: bool = True
    # A persistent session keeps QoS 1 messages for us while we are down or restarting.
    clean_session: bool = False
    connect_timeout: str = "5s"
    skip_cert_verify: bool = False


class MessageBus(Pascal):
    type: str = "mqtt"
    protocol: str = "tcp"
    host: str = "localhost"
    port: int = 1883
    auth_mode: str = "none"
    secret_name: str = ""
    base_topic_prefix: str = "edgex"
    optional: MessageBusOptional = msgspec.field(default_factory=MessageBusOptional)


class Trigger(Pascal):
    type: str = "edgex-messagebus"
    subscribe_topics: str = "events/device/#"
    publish_topic: str = ""


class Client(Pascal):
    protocol: str = "http"
    host: str = "localhost"
    port: int = 0

    @property
    def url(self) -> str:
        return f"{self.protocol}://{self.host}:{self.port}"


class Binding(Pascal):
    model: str
    device_name: str = "*"
    profile_name: str = "*"
    source_name: str = "*"
    resources: list[str] = msgspec.field(default_factory=list)


class Inference(Pascal):
    models_dir: str = "models"
    runtime: str = "auto"
    num_threads: int = 1
    queue_size: int = 10000
    max_message_size: int = 1 << 20
    export: str = "messagebus"
    bindings: list[Binding] = msgspec.field(default_factory=list)


class Registry(Pascal):
    type: str = "keeper"
    host: str = "localhost"
    port: int = 59890


class Metadata(Pascal):
    enabled: bool = True
    profiles_dir: str = "profiles"
    create_devices: bool = False


class Actuation(Pascal):
    name: str
    model: str
    when: str
    command: str
    consecutive: int = 1
    cooldown: str = "0s"
    device: str = "{device}"
    settings: dict[str, str] = msgspec.field(default_factory=dict)
    via: str = "rest"
    timeout: str = "5s"


def _default_clients() -> dict[str, Client]:
    return {
        "core-data": Client(port=59880),
        "core-metadata": Client(port=59881),
        "core-command": Client(port=59882),
    }


class Config(Pascal):
    writable: Writable = msgspec.field(default_factory=Writable)
    service: ServiceInfo = msgspec.field(default_factory=ServiceInfo)
    message_bus: MessageBus = msgspec.field(default_factory=MessageBus)
    trigger: Trigger = msgspec.field(default_factory=Trigger)
    clients: dict[str, Client] = msgspec.field(default_factory=_default_clients)
    application_settings: dict[str, str] = msgspec.field(default_factory=dict)
    inference: Inference = msgspec.field(default_factory=Inference)
    registry: Registry = msgspec.field(default_factory=Registry)
    metadata: Metadata = msgspec.field(default_factory=Metadata)
    actuations: list[Actuation] = msgspec.field(default_factory=list)

    def secret(self, name: str) -> dict[str, str]:
        """Writable.InsecureSecrets entry by SecretName (the non-secure-mode secret store)."""
        for secret in self.writable.insecure_secrets.values():
            if secret.secret_name == name:
                return secret.secret_data
        raise ConfigError(f"Writable.InsecureSecrets has no secret with SecretName {name!r}")


_CHOICES = {
    ("MessageBus", "Type"): ("mqtt",),
    ("MessageBus", "Protocol"): ("tcp", "ssl", "tls", "mqtt", "mqtts"),
    ("MessageBus", "AuthMode"): ("none", "usernamepassword"),
    ("Inference", "Runtime"): ("auto", "ai_edge_litert", "tflite_runtime"),
    ("Inference", "Export"): ("messagebus", "rest", "both"),
    ("Registry", "Type"): ("keeper", "consul"),
    ("Writable", "LogLevel"): ("TRACE", "DEBUG", "INFO", "WARN", "WARNING", "ERROR"),
}


def load(path: Path, *, environ: Mapping[str, str] = os.environ,
         overlay: Mapping[str, Any] | None = None) -> Config:
    """Read the configuration file, apply `overlay` (common config), then env overrides."""
    return build(read_file(path), overlay=overlay, environ=environ, source=str(path))


def read_file(path: Path) -> dict[str, Any]:
    try:
        data = yaml.safe_load(path.read_text()) or {}
    except OSError as exc:
        raise ConfigError(f"cannot read configuration file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"configuration file {path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"configuration file {path} must hold a mapping at the top level")
    return data


def build(data: Mapping[str, Any], *, overlay: Mapping[str, Any] | None = None,
          environ: Mapping[str, str] = os.environ, source: str = "configuration") -> Config:
    """Defaults, then `overlay` (common config), then `data` (this service's), then env overrides."""
    merged = msgspec.to_builtins(Config())
    if overlay:
        _merge(merged, overlay)
    _merge(merged, data)
    apply_env_overrides(merged, environ)
    return from_dict(merged, source=source)


def from_dict(data: Mapping[str, Any], *, source: str = "configuration") -> Config:
    try:
        config = msgspec.convert(data, Config, strict=False)
    except msgspec.ValidationError as exc:
        message, _, where = str(exc).partition(" - at `$.")
        key = where.rstrip("`").replace("`", "") if where else "?"
        raise ConfigError(f"{source}: {key}: {message}") from None
    validate(config)
    return config


def validate(config: Config) -> None:
    values = msgspec.to_builtins(config)
    for (section, key), allowed in _CHOICES.items():
        value = values[section][key]
        if value not in allowed:
            raise ConfigError(f"{section}.{key}: {value!r} is not one of {', '.join(allowed)}")
    qos = config.message_bus.optional.qos
    if qos not in (0, 1, 2):
        raise ConfigError(f"MessageBus.Optional.Qos: {qos} is not 0, 1 or 2")
    for key in ("QueueSize", "NumThreads", "MaxMessageSize"):
        if values["Inference"][key] < 1:
            raise ConfigError(f"Inference.{key}: must be at least 1")
    # Every duration is checked here, so a typo stops the start rather than the first use.
    for key, value in (("Writable.Telemetry.Interval", config.writable.telemetry.interval),
                       ("MessageBus.Optional.ConnectTimeout",
                        config.message_bus.optional.connect_timeout),
                       ("Service.RequestTimeout", config.service.request_timeout),
                       ("Service.HealthCheckInterval", config.service.health_check_interval),
                       *((f"Actuations[{i}] ({rule.name}).{key}", value)
                         for i, rule in enumerate(config.actuations)
                         for key, value in (("Cooldown", rule.cooldown), ("Timeout", rule.timeout)))):
        duration(value, key=key)
    if config.writable.store_and_forward.enabled:
        raise ConfigError("Writable.StoreAndForward.Enabled: store and forward is not supported; "
                          "with Qos 1 the broker keeps what the service has not processed, and "
                          "failed core-data REST exports are counted in HttpExportErrors")
    if config.message_bus.auth_mode == "usernamepassword":
        config.secret(config.message_bus.secret_name)


def _merge(into: dict[str, Any], data: Mapping[str, Any]) -> None:
    for key, value in data.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        else:
            into[key] = value


def env_name(path: tuple[str, ...]) -> str:
    return re.sub(r"[.\-]", "_", "_".join(path)).upper()


def apply_env_overrides(data: dict[str, Any], environ: Mapping[str, str],
                        path: tuple[str, ...] = ()) -> None:
    """EdgeX env overrides, for every leaf key (lists of strings take comma-separated values)."""
    for key, value in data.items():
        here = (*path, key)
        if isinstance(value, dict):
            apply_env_overrides(value, environ, here)
            continue
        override = environ.get(env_name(here))
        if override is None:
            continue
        if isinstance(value, list):
            data[key] = [item.strip() for item in override.split(",") if item.strip()]
        else:
            data[key] = override


_DURATION = re.compile(r"(\d+(?:\.\d+)?)(ns|us|µs|ms|s|m|h)")
_UNIT_SECONDS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def duration(text: str | int | float, *, key: str = "duration") -> float:
    """Seconds in a Go duration string ("30s", "1m30s", "250ms"); a bare number means seconds."""
    if isinstance(text, (int, float)):
        return float(text)
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    parts = _DURATION.findall(text)
    if not parts or "".join(a + b for a, b in parts) != text:
        raise ConfigError(f"{key}: {text!r} is not a duration like 30s, 1m or 250ms")
    return sum(float(number) * _UNIT_SECONDS[unit] for number, unit in parts)


def redacted(config: Config) -> dict[str, Any]:
    """The configuration as plain data with secret values hidden, for GET /api/v3/config."""
    data = msgspec.to_builtins(config)
    for secret in data["Writable"]["InsecureSecrets"].values():
        secret["SecretData"] = {key: "***" for key in secret["SecretData"]}
    return data
