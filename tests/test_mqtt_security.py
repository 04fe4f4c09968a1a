"""MessageBus with AuthMode usernamepassword and Protocol ssl, against a real mosquitto."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from app_service.broker import Broker, find_mosquitto, start_broker

from .mqtt_helpers import RESULTS, Peer, device_topic, envelope, float_event, payload_of, start_service

FLOAT_TOPIC = device_topic("Random-Float-Device", "Random-Float-Device", "Float32")
pytestmark = pytest.mark.skipif(find_mosquitto() is None, reason="needs mosquitto (.ci/run installs it)")


@pytest.fixture
def readable() -> Iterator[Path]:
    """A folder mosquitto can read after it drops root for its own user (pytest's are 0700)."""
    folder = Path(tempfile.mkdtemp(prefix="mosquitto-test-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder)


@pytest.fixture
def password_broker(readable: Path) -> Iterator[Broker]:
    """mosquitto that lets in only the user edgex with the password s3cret."""
    path = readable / "passwords"
    path.touch()
    subprocess.run(["mosquitto_passwd", "-b", str(path), "edgex", "s3cret"], check=True)
    path.chmod(0o644)
    with start_broker(kind="mosquitto",
                      mosquitto_conf=f"allow_anonymous false\npassword_file {path}") as broker:
        yield broker


def credentials(password: str) -> dict[str, str]:
    return {"MESSAGEBUS_AUTHMODE": "usernamepassword",
            "WRITABLE_INSECURESECRETS_MQTT_SECRETDATA_USERNAME": "edgex",
            "WRITABLE_INSECURESECRETS_MQTT_SECRETDATA_PASSWORD": password}


def test_username_and_password_from_insecure_secrets(tmp_path: Path, password_broker: Broker):
    port = password_broker.port
    service = start_service(port, tmp_path, env=credentials("s3cret"))
    try:
        results = Peer(port, RESULTS, username="edgex", password="s3cret")
        Peer(port, username="edgex", password="s3cret").publish(
            FLOAT_TOPIC, envelope(float_event("1.5")))
        (message,) = results.take(1)
        assert payload_of(message)["event"]["sourceName"] == "linear_regression"
    finally:
        service.stop()


def test_wrong_password_is_reported(tmp_path: Path, password_broker: Broker):
    service = start_service(password_broker.port, tmp_path, env=credentials("wrong"),
                            wait="refused the connection")
    assert "not authori" in service.log.lower()
    service.stop()


def test_tls(tmp_path: Path, readable: Path):
    key, cert = readable / "key.pem", readable / "cert.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
                    "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    key.chmod(0o644)
    with start_broker(kind="mosquitto", mosquitto_conf=f"certfile {cert}\nkeyfile {key}") as broker:
        env = {"MESSAGEBUS_PROTOCOL": "ssl", "MESSAGEBUS_OPTIONAL_SKIPCERTVERIFY": "true"}
        service = start_service(broker.port, tmp_path, env=env)
        try:
            assert f"ssl://127.0.0.1:{broker.port}" in service.log
            results = Peer(broker.port, RESULTS, tls=True)
            Peer(broker.port, tls=True).publish(FLOAT_TOPIC, envelope(float_event("1.5")))
            (message,) = results.take(1)
            assert payload_of(message)["event"]["deviceName"] == "Random-Float-Device"
        finally:
            service.stop()
