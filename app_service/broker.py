"""An MQTT broker of our own for the demo and the tests: mosquitto when it is installed,
otherwise amqtt running in-process (the `demo` extra), so neither needs anything set up first.
"""

from __future__ import annotations

import asyncio
import logging
import shutil
import socket
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

MOSQUITTO_PATHS = ("/usr/sbin/mosquitto", "/usr/local/sbin/mosquitto")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def find_mosquitto() -> str | None:
    return shutil.which("mosquitto") or next(
        (path for path in MOSQUITTO_PATHS if Path(path).is_file()), None)


def _wait_for_port(port: int, timeout: float, alive: Callable[[], bool] = lambda: True) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not alive():
            raise RuntimeError(f"the MQTT broker on port {port} exited while starting")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"no MQTT broker answered on port {port} within {timeout:.0f}s")


@dataclass
class Broker:
    port: int
    kind: str
    host: str = "127.0.0.1"
    _stop: Callable[[], None] = field(repr=False, default=lambda: None)

    def stop(self) -> None:
        self._stop()

    def __enter__(self) -> Broker:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()


def start_broker(port: int = 0, *, kind: str = "auto", mosquitto_conf: str = "") -> Broker:
    """Start a broker on 127.0.0.1:`port` (0: a free one). `kind`: auto, mosquitto or amqtt.

    `mosquitto_conf`: more mosquitto.conf lines, applying to the listener (TLS, passwords)."""
    port = port or free_port()
    mosquitto = find_mosquitto() if kind in ("auto", "mosquitto") else None
    if mosquitto:
        return _start_mosquitto(mosquitto, port, mosquitto_conf)
    if kind == "mosquitto":
        raise RuntimeError("mosquitto is not installed (apt-get install mosquitto)")
    return _start_amqtt(port)


def _start_mosquitto(binary: str, port: int, extra: str) -> Broker:
    folder = tempfile.TemporaryDirectory(prefix="mosquitto-")
    conf = Path(folder.name) / "mosquitto.conf"
    # Per-client queues sized for bursts of EdgeX events; the default 1000 drops QoS 1 messages.
    conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n"
                    "max_queued_messages 100000\nmax_inflight_messages 1000\npersistence false\n"
                    f"{extra}\n")
    # A session of its own: Ctrl-C in a terminal must stop the demo cleanly, not its broker.
    process = subprocess.Popen([binary, "-c", str(conf)], stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE, start_new_session=True)

    def stop() -> None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        folder.cleanup()

    try:
        _wait_for_port(port, 10, alive=lambda: process.poll() is None)
    except RuntimeError as exc:
        stop()
        raise RuntimeError(f"{exc}: {process.stderr.read().decode(errors='replace')}") from None
    return Broker(port=port, kind="mosquitto", _stop=stop)


def _start_amqtt(port: int) -> Broker:
    try:
        from amqtt.broker import Broker as AmqttBroker
    except ImportError:
        raise RuntimeError("no MQTT broker: install mosquitto, or amqtt "
                           "(pip install 'app-tflite-inference[demo]')") from None
    config = {
        "listeners": {"default": {"type": "tcp", "bind": f"127.0.0.1:{port}"}},
        "plugins": {"amqtt.plugins.authentication.AnonymousAuthPlugin": {"allow_anonymous": True}},
    }
    # amqtt logs every client that disconnects abruptly, and its own shutdown, as errors.
    logging.getLogger("amqtt").setLevel(logging.CRITICAL)
    loop = asyncio.new_event_loop()
    broker = AmqttBroker(config, loop=loop)
    started = threading.Event()

    def serve() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(broker.start())
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, name="amqtt-broker", daemon=True)
    thread.start()
    if not started.wait(10):
        raise RuntimeError(f"the embedded amqtt broker did not start on port {port}")

    def stop() -> None:
        asyncio.run_coroutine_threadsafe(broker.shutdown(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)

    return Broker(port=port, kind="amqtt", _stop=stop)
