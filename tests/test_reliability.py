"""Broker restarts and service crashes: nothing accepted is lost."""

from __future__ import annotations

import signal
import socket
import uuid

import pytest
import requests

from app_service.broker import free_port, start_broker

from .mqtt_helpers import (
    RESULTS,
    Peer,
    device_topic,
    envelope,
    float_event,
    payload_of,
    start_service,
)

FLOAT_TOPIC = device_topic("Random-Float-Device", "Random-Float-Device", "Float32")


@pytest.fixture
def own_broker_port():
    """A port for a broker this test may stop and start again (mosquitto keeps no state)."""
    return free_port()


def test_reconnects_and_resubscribes_after_broker_restart(own_broker_port, tmp_path):
    broker = start_broker(own_broker_port, kind="mosquitto")
    service = start_service(own_broker_port, tmp_path)
    try:
        broker.stop()
        service.wait_for_log("lost MessageBus")
        broker = start_broker(own_broker_port, kind="mosquitto")
        results = Peer(own_broker_port, RESULTS)
        service.wait_for_log("connected to MessageBus", timeout=60, count=2)
        Peer(own_broker_port).publish(FLOAT_TOPIC, envelope(float_event("2.0")))
        (message,) = results.take(1, timeout=30)
        assert message.topic.endswith("/linear_regression")
    finally:
        assert service.stop() == 0
        broker.stop()


def test_without_auto_reconnect_a_lost_broker_stops_the_service(own_broker_port, tmp_path):
    """So that an orchestrator (restart: always) starts it again, with a non-zero exit."""
    broker = start_broker(own_broker_port, kind="mosquitto")
    service = start_service(own_broker_port, tmp_path,
                            env={"MESSAGEBUS_OPTIONAL_AUTORECONNECT": "false"})
    broker.stop()
    assert service.process.wait(30) == 1
    assert "AutoReconnect is off" in service.log


def test_messages_survive_a_service_crash(broker, tmp_path):
    """QoS 1, a persistent session and acks only after processing: a message the service had
    received but not processed when it died comes back when it restarts."""
    client_id = f"app-tflite-inference-{uuid.uuid4().hex[:8]}"
    env = {"MESSAGEBUS_OPTIONAL_CLIENTID": client_id}
    results = Peer(broker.port, RESULTS)
    first = start_service(broker.port, tmp_path, env=env)
    first.process.send_signal(signal.SIGSTOP)  # frozen: receives nothing, acks nothing
    device = Peer(broker.port)
    sent = [float_event(f"{i}.0") for i in range(20)]
    for request in sent:
        device.publish(FLOAT_TOPIC, envelope(request))
    first.process.kill()
    first.process.wait()
    second = start_service(broker.port, tmp_path, env=env)
    try:
        got = {payload_of(m)["event"]["tags"]["sourceEventId"]
               for m in results.take(len(sent), timeout=30)}
        assert got == {request["event"]["id"] for request in sent}
    finally:
        second.stop()


def test_replicas_split_a_shared_subscription(service, peer):
    """Two replicas on one shared subscription: every event is answered exactly once."""
    results = peer(RESULTS)
    shared = {"TRIGGER_SUBSCRIBETOPICS": "$share/inference/events/device/#"}
    replicas = [service(env=shared), service(env=shared)]
    device = peer()
    sent = [float_event(f"{i}.0") for i in range(40)]
    for request in sent:
        device.publish(FLOAT_TOPIC, envelope(request))
    answered = [payload_of(m)["event"]["tags"]["sourceEventId"] for m in results.take(len(sent))]
    assert sorted(answered) == sorted(request["event"]["id"] for request in sent)
    results.assert_silent()
    for replica in replicas:  # mosquitto hands a shared subscription's messages round robin
        metrics = requests.get(f"http://127.0.0.1:{replica.rest_port}/metrics", timeout=5).text
        assert "app_tflite_pipeline_messages_processed_total 0.0" not in metrics
        assert replica.stop() == 0


@pytest.mark.parametrize("kind", ["mosquitto", "amqtt"])
def test_embedded_broker_on_a_taken_port_says_why(kind):
    with socket.create_server(("127.0.0.1", 0)) as taken, pytest.raises(RuntimeError, match="port"):
        start_broker(taken.getsockname()[1], kind=kind)
