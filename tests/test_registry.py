"""Registry and configuration provider: the service as `app-tflite-inference -r -cp ...` runs it."""

from __future__ import annotations

import json
import signal
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests

from .deployment_helpers import seed_common_config
from .mqtt_helpers import RESULTS, device_topic, envelope, float_event, payload_of

SERVICE_ID = "app-tflite-inference"
PRIVATE = "edgex/v4/app-tflite-inference"


def post_and_take_result(peer, results, device: str = "Random-Float-Device") -> dict:
    peer().publish(device_topic(device, "Random-Float-Device", "Float32"),
                   envelope(float_event("5.0", device=device)))
    (message,) = results.take(1)
    return payload_of(message)["event"]


def test_keeper_registration_common_config_and_deregistration(edgex, broker, service, peer):
    """The acceptance run: the MessageBus address comes only from core-keeper's common config."""
    seed_common_config(edgex, broker.port)
    results = peer(RESULTS)
    running = service("-r", "-cp", edgex.keeper_provider, bus_env=False)
    assert f"MessageBus tcp://127.0.0.1:{broker.port}" in running.log

    registered = edgex.wait_for(lambda r: (r.method, r.route) == ("POST", "/registry"))
    assert registered.body["registration"] == {
        "serviceId": SERVICE_ID,
        "host": "localhost",
        "port": running.rest_port,
        "healthCheck": {"interval": "10s", "path": "/api/v3/ping", "type": "http"},
    }
    ping = requests.get(f"http://127.0.0.1:{running.rest_port}/api/v3/ping", timeout=5)
    assert ping.status_code == 200 and ping.json()["apiVersion"] == "v3"

    event = post_and_take_result(peer, results)
    assert event["profileName"] == "linear-regression-result"

    edgex.wait_for(lambda r: (r.method, r.route) == ("POST", "/deviceservice"))
    assert "linear-regression-result" in edgex.profiles
    assert edgex.device_services[SERVICE_ID]["baseAddress"] == f"http://localhost:{running.rest_port}"
    # first start: the local file became the provider's copy (without env overrides)
    assert edgex.kv[f"{PRIVATE}/Service/Port"] == "59741"

    assert running.stop() == 0
    assert edgex.registrations[SERVICE_ID]["status"] == "HALT"
    assert len(edgex.calls("core-keeper", "DELETE", "/registry/serviceId/{serviceId}")) == 1


def test_private_config_is_read_from_keeper_after_first_start(edgex, broker, service, peer):
    seed_common_config(edgex, broker.port)
    service("-cp", edgex.keeper_provider, bus_env=False).stop()
    bindings = f"{PRIVATE}/Inference/Bindings"
    assert json.loads(edgex.kv[bindings])[0]["DeviceName"] == "Random-Float-Device"
    edgex.seed_kv(bindings, json.dumps([{"Model": "linear_regression", "DeviceName": "Other-Device"}]))

    results = peer(RESULTS)
    edited = service("-cp", edgex.keeper_provider, bus_env=False)
    assert post_and_take_result(peer, results, device="Other-Device")["deviceName"] == "Other-Device"
    edited.stop()

    service("-cp", edgex.keeper_provider, "-o", bus_env=False).stop()
    assert json.loads(edgex.kv[bindings])[0]["DeviceName"] == "Random-Float-Device"


def test_consul_registration_and_common_config(edgex, broker, service, peer):
    seed_common_config(edgex, broker.port, stem="edgex/v3", registry="consul")
    results = peer(RESULTS)
    running = service("-r", "-cp", edgex.consul_provider, bus_env=False)

    edgex.wait_for(lambda r: (r.service, r.path) == ("consul", "/v1/agent/service/register"))
    registration = edgex.consul_services[SERVICE_ID]
    assert registration["Port"] == running.rest_port
    assert registration["Check"]["HTTP"] == f"http://localhost:{running.rest_port}/api/v3/ping"
    assert post_and_take_result(peer, results)["sourceName"] == "linear_regression"
    assert edgex.kv["edgex/v3/app-tflite-inference/Service/Port"] == "59741"

    assert running.stop() == 0
    assert SERVICE_ID not in edgex.consul_services


def test_registration_after_a_crash_updates_the_old_one(edgex, service):
    env = {"REGISTRY_HOST": "127.0.0.1", "REGISTRY_PORT": str(edgex.port("core-keeper")),
           "METADATA_ENABLED": "false"}
    crashed = service("-r", env=env)
    edgex.wait_for(lambda r: (r.method, r.route, r.status) == ("POST", "/registry", 201))
    crashed.stop(signal.SIGKILL)

    restarted = service("-r", env=env)
    updated = edgex.wait_for(lambda r: (r.method, r.route) == ("PUT", "/registry"))
    assert updated.status == 204
    assert edgex.registrations[SERVICE_ID]["port"] == restarted.rest_port


def test_gives_up_when_the_common_config_never_gets_ready(edgex, service):
    running = service("-cp", edgex.keeper_provider, bus_env=False, wait=None,
                      env={"EDGEX_STARTUP_DURATION": "1", "EDGEX_STARTUP_INTERVAL": "0.2"})
    assert running.process.wait(30) == 1
    assert "common configuration not ready" in running.log
    assert "IsCommonConfigReady" in running.log


def test_bad_provider_url_is_a_clear_error(service):
    running = service("-cp", "etcd.http://localhost:2379", wait=None)
    assert running.process.wait(30) == 1
    assert "keeper.http://HOST:PORT" in running.log


class _NotEdgeX(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        page = b"<html>a router's admin page</html>"
        self.send_response(200)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def web_page() -> Iterator[str]:
    """The URL of an HTTP server that is not EdgeX: every GET answers 200 with an HTML page."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NotEdgeX)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    thread.join()
    server.server_close()


def test_something_else_at_the_provider_address_is_a_clear_error(service, web_page):
    running = service("-cp", f"keeper.{web_page}", wait=None, env={"EDGEX_STARTUP_DURATION": "0"})
    assert running.process.wait(30) == 1
    assert f"{web_page}/api/v3/kvs/key/" in running.log
    assert "answered 200 with no JSON: \"<html>a router's admin page</html>\"" in running.log
    assert "Traceback" not in running.log
