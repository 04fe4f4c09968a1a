"""Configuration: the EdgeX layout, env overrides, flags and errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from app_service.cli import config_path, parser
from app_service.config import ConfigError, duration, load, redacted

from .mqtt_helpers import REPO

DEFAULT = REPO / "res" / "configuration.yaml"


def test_default_configuration():
    config = load(DEFAULT, environ={})
    assert config.service.port == 59741
    assert config.message_bus.host == "localhost" and config.message_bus.port == 1883
    assert config.trigger.subscribe_topics == "events/device/#"
    (binding,) = config.inference.bindings
    assert (binding.model, binding.device_name, binding.source_name) == (
        "linear_regression", "Random-Float-Device", "Float32")


def test_env_overrides_every_key():
    config = load(DEFAULT, environ={
        "MESSAGEBUS_HOST": "edgex-mqtt-broker", "MESSAGEBUS_PORT": "1884",
        "SERVICE_PORT": "59999", "WRITABLE_LOGLEVEL": "DEBUG",
        "MESSAGEBUS_OPTIONAL_QOS": "0", "MESSAGEBUS_OPTIONAL_AUTORECONNECT": "false",
        "CLIENTS_CORE_DATA_HOST": "edgex-core-data", "TRIGGER_SUBSCRIBETOPICS": "events/#",
        "WRITABLE_TELEMETRY_INTERVAL": "1s", "INFERENCE_RUNTIME": "tflite_runtime",
    })
    assert config.message_bus.host == "edgex-mqtt-broker"
    assert config.message_bus.port == 1884
    assert config.service.port == 59999
    assert config.writable.log_level == "DEBUG"
    assert config.message_bus.optional.qos == 0
    assert config.message_bus.optional.auto_reconnect is False
    assert config.clients["core-data"].host == "edgex-core-data"
    assert config.trigger.subscribe_topics == "events/#"
    assert duration(config.writable.telemetry.interval) == 1.0
    assert config.inference.runtime == "tflite_runtime"


@pytest.mark.parametrize("env, key", [
    ({"MESSAGEBUS_PORT": "eighteen"}, "MessageBus.Port"),
    ({"MESSAGEBUS_AUTHMODE": "token"}, "MessageBus.AuthMode"),
    ({"MESSAGEBUS_OPTIONAL_QOS": "3"}, "MessageBus.Optional.Qos"),
    ({"INFERENCE_RUNTIME": "onnx"}, "Inference.Runtime"),
    ({"WRITABLE_TELEMETRY_INTERVAL": "soon"}, "Writable.Telemetry.Interval"),
    ({"INFERENCE_QUEUESIZE": "0"}, "Inference.QueueSize"),
])
def test_errors_name_the_key(env, key):
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load(DEFAULT, environ=env)


def test_file_errors(tmp_path: Path):
    with pytest.raises(ConfigError, match="cannot read"):
        load(tmp_path / "missing.yaml", environ={})
    bad = tmp_path / "bad.yaml"
    bad.write_text("Service: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load(bad, environ={})
    wrong = tmp_path / "wrong.yaml"
    wrong.write_text("Inference:\n  Bindings:\n    - DeviceName: x\n")
    with pytest.raises(ConfigError, match=r"Inference\.Bindings\[0\]"):
        load(wrong, environ={})


def test_username_password_needs_its_secret(tmp_path: Path):
    with pytest.raises(ConfigError, match="SecretName 'nope'"):
        load(DEFAULT, environ={"MESSAGEBUS_AUTHMODE": "usernamepassword",
                               "MESSAGEBUS_SECRETNAME": "nope"})
    config = load(DEFAULT, environ={"MESSAGEBUS_AUTHMODE": "usernamepassword",
                                    "WRITABLE_INSECURESECRETS_MQTT_SECRETDATA_PASSWORD": "s3cret"})
    assert config.secret("mqtt")["password"] == "s3cret"
    assert redacted(config)["Writable"]["InsecureSecrets"]["mqtt"]["SecretData"]["password"] == "***"


@pytest.mark.parametrize("text, seconds", [("30s", 30), ("1m30s", 90), ("250ms", 0.25), ("5", 5),
                                           ("1h", 3600)])
def test_durations(text, seconds):
    assert duration(text) == seconds


def test_flags_pick_the_file():
    args = parser().parse_args(["-cd", "/etc/app", "-cf", "other.yaml", "-p", "docker"])
    assert config_path(args) == Path("/etc/app/docker/other.yaml")
    args = parser().parse_args(["--configDir", "conf", "--configFile", "x.yaml"])
    assert config_path(args) == Path("conf/x.yaml")
    assert config_path(parser().parse_args([])) == Path("res/configuration.yaml")
    # the subcommands take them too, before or after their name
    assert config_path(parser().parse_args(["demo", "-cd", "conf"])) == Path("conf/configuration.yaml")
    assert config_path(parser().parse_args(["-cd", "conf", "simulate"])) == Path(
        "conf/configuration.yaml")


def test_store_and_forward_is_refused_rather_than_ignored():
    with pytest.raises(ConfigError, match=r"Writable\.StoreAndForward\.Enabled"):
        load(DEFAULT, environ={"WRITABLE_STOREANDFORWARD_ENABLED": "true"})
