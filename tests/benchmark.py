"""Throughput and memory of the real service against a bare paho-mqtt relay, in the same run.

    .venv/bin/python -m tests.benchmark [--events 20000]

Both run as processes against one real broker: a publisher sends EdgeX 4.x events at QoS 1 as
fast as the broker takes them, a collector counts what comes out. The relay subscribes and
re-publishes each message unchanged: the ceiling for any Python MQTT service here. Results are
ratios against the relay, since absolute numbers swing with whatever else the machine does.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion

from app_service.broker import start_broker

from .mqtt_helpers import REPO, device_topic, envelope, float_event, start_service

SOURCE = device_topic("Random-Float-Device", "Random-Float-Device", "Float32")
RELAY_OUT = "bench/relay/out"

RELAY = f"""
import sys, paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
client = paho.Client(CallbackAPIVersion.VERSION2, client_id="relay")
client.on_connect = lambda c, *_: (c.subscribe("edgex/events/device/#", 1), print("ready", flush=True))
client.on_message = lambda c, _u, m: c.publish("{RELAY_OUT}", m.payload, qos=1)
client.connect("127.0.0.1", int(sys.argv[1]))
client.loop_forever()
"""


def _client(port: int) -> paho.Client:
    client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"bench-{uuid.uuid4().hex[:8]}")
    client.connect("127.0.0.1", port)
    client.loop_start()
    return client


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1])
    return 0


def measure(port: int, out_topic: str, events: int, pid: int) -> tuple[float, int]:
    """Events per second end to end (first publish to last output), and the peak RSS in KiB."""
    done = threading.Event()
    received = 0

    def count(_c: object, _u: object, _m: object) -> None:
        nonlocal received
        received += 1
        if received == events:
            done.set()

    collector = _client(port)
    collector.on_message = count
    collector.subscribe(out_topic, qos=1)[1]
    collector.publish("bench/sync", b"", qos=1).wait_for_publish(5)
    publisher = _client(port)
    payloads = [envelope(float_event(f"{i % 100:e}")) for i in range(1000)]
    started = time.perf_counter()
    for i in range(events):
        publisher.publish(SOURCE, payloads[i % len(payloads)], qos=1)
    if not done.wait(max(60, events / 200)):
        raise RuntimeError(f"only {received} of {events} outputs arrived")
    elapsed = time.perf_counter() - started
    for client in (publisher, collector):
        client.loop_stop()
        client.disconnect()
    return events / elapsed, _rss_kib(pid)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20000)
    args = parser.parse_args()
    workdir = Path(os.environ.get("TMPDIR", "/tmp"))
    with start_broker(kind="mosquitto") as broker:
        relay = subprocess.Popen([sys.executable, "-c", RELAY, str(broker.port)],
                                 stdout=subprocess.PIPE, text=True)
        relay.stdout.readline()
        relay_rate, relay_rss = measure(broker.port, RELAY_OUT, args.events, relay.pid)
        relay.terminate()
        relay.wait()
        service = start_service(broker.port, workdir)
        service_rate, service_rss = measure(broker.port, "edgex/events/device/app-tflite-inference/#",
                                            args.events, service.process.pid)
        service.stop()
    print(f"events: {args.events} at QoS 1, broker {broker.kind}, repo {REPO.name}")
    print(f"relay   : {relay_rate:8.0f} events/s  peak RSS {relay_rss / 1024:6.1f} MiB")
    print(f"service : {service_rate:8.0f} events/s  peak RSS {service_rss / 1024:6.1f} MiB")
    print(f"ratio   : {service_rate / relay_rate:.2f} of the relay's throughput, "
          f"{service_rss / relay_rss:.1f}x its memory")


if __name__ == "__main__":
    main()
