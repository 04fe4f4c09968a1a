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
    log = Path(folder.name) / "mosquitto.log"
    # A session of its own: Ctrl-C in a terminal must stop the demo cleanly, not its broker.
    with log.open("wb") as output:
        process = subprocess.Popen([binary, "-c", str(conf)], stdout=output,
                                   stderr=subprocess.STDOUT, start_new_session=True)

    def stop() -> None:
        process.terminate()
        try:
            process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        folder.cleanup()

    # Ready when it says so: a connect test would be fooled by another server on the port.
    deadline = time.monotonic() + 10
    while b" running" not in log.read_bytes():
        if process.poll() is not None or time.monotonic() > deadline:
            text = log.read_text(errors="replace").strip()
            stop()
            raise RuntimeError(f"mosquitto did not start on port {port}: {text}")
        time.sleep(0.02)
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
    failure: list[BaseException] = []

    def serve() -> None:
        asyncio.set_event_loop(loop)
        try:
            loop.run_until_complete(broker.start())
        except Exception as exc:  # e.g. the port is taken: report it from start_broker
            failure.append(exc)
            return
        finally:
            started.set()
        loop.run_forever()

    thread = threading.Thread(target=serve, name="amqtt-broker", daemon=True)
    thread.start()
    if not started.wait(10) or failure:
        cause = f": {failure[0]}" if failure else ""
        raise RuntimeError(f"the embedded amqtt broker did not start on port {port}{cause}")

    def stop() -> None:
        asyncio.run_coroutine_threadsafe(broker.shutdown(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(5)

    return Broker(port=port, kind="amqtt", _stop=stop)
