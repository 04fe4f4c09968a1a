"""The EdgeX MessageBus over MQTT (paho-mqtt 2.x), configured by the `MessageBus` section.

Inbound messages are acknowledged by the caller (manual acks), so a QoS 1 message that was
received but not yet processed is redelivered by the broker if the service dies.
"""

from __future__ import annotations

import logging
import ssl
import threading
from collections.abc import Callable

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from .config import MessageBus as BusConfig
from .config import duration

log = logging.getLogger(__name__)

OnMessage = Callable[[paho.MQTTMessage], None]


class MessageBus:
    def __init__(self, config: BusConfig, topics: list[str], on_message: OnMessage, *,
                 credentials: dict[str, str] | None = None, client_id: str | None = None,
                 on_lost: Callable[[], None] | None = None,
                 on_published: Callable[[int], None] | None = None) -> None:
        self.config = config
        self.topics = topics
        self.connected = threading.Event()
        self._on_lost = on_lost
        optional = config.optional
        self.qos = optional.qos
        self.client = paho.Client(
            CallbackAPIVersion.VERSION2,
            client_id=client_id or optional.client_id,
            clean_session=optional.clean_session,
            manual_ack=True,
            reconnect_on_failure=optional.auto_reconnect,
        )
        self.client.connect_timeout = duration(optional.connect_timeout,
                                               key="MessageBus.Optional.ConnectTimeout")
        self.client.reconnect_delay_set(min_delay=1, max_delay=30)
        # Messages are acked once their results are PUBACKed, so the in-flight window bounds
        # throughput: paho's default of 20 starves the pipeline, while every PUBACK makes paho
        # walk all in-flight messages, so 1000 is slower again. 100 measured best (tests/benchmark.py).
        self.client.max_inflight_messages_set(100)
        if config.protocol in ("ssl", "tls", "mqtts"):
            self.client.tls_set(cert_reqs=ssl.CERT_NONE if optional.skip_cert_verify
                                else ssl.CERT_REQUIRED)
            self.client.tls_insecure_set(optional.skip_cert_verify)
        if config.auth_mode == "usernamepassword" and credentials:
            self.client.username_pw_set(credentials.get("username"), credentials.get("password"))
        self.client.on_connect = self._connected
        self.client.on_disconnect = self._disconnected
        self.client.on_message = lambda _client, _userdata, message: on_message(message)
        if on_published:
            self.client.on_publish = lambda _client, _userdata, mid, _reason, _props: on_published(mid)

    @property
    def address(self) -> str:
        return f"{self.config.protocol}://{self.config.host}:{self.config.port}"

    def start(self) -> None:
        """Connect in the background; paho retries with backoff until the broker answers."""
        self.client.connect_async(self.config.host, self.config.port,
                                  keepalive=self.config.optional.keep_alive)
        self.client.loop_start()

    def stop(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()

    def unsubscribe(self) -> None:
        """Take no more messages (at shutdown, before the queued ones are finished)."""
        self.client.unsubscribe(self.topics)

    def publish(self, topic: str, payload: bytes) -> paho.MQTTMessageInfo:
        return self.client.publish(topic, payload, qos=self.qos,
                                   retain=self.config.optional.retained)

    def ack(self, message: paho.MQTTMessage) -> None:
        if message.qos:
            self.client.ack(message.mid, message.qos)

    def _connected(self, client: paho.Client, _userdata: object, _flags: object,
                   reason: ReasonCode, _properties: object) -> None:
        if reason.is_failure:
            log.error("MessageBus %s refused the connection: %s", self.address, reason)
            return
        # A clean session loses subscriptions, and the broker may have lost its persistent
        # one: every (re)connect subscribes again.
        client.subscribe([(topic, self.qos) for topic in self.topics])
        self.connected.set()
        log.info("connected to MessageBus %s, subscribed to %s", self.address,
                 ", ".join(self.topics))

    def _disconnected(self, _client: paho.Client, _userdata: object, _flags: object,
                      reason: ReasonCode, _properties: object) -> None:
        was_connected = self.connected.is_set()
        self.connected.clear()
        if reason.value == 0:
            return
        if not self.config.optional.auto_reconnect:
            log.error("lost MessageBus %s (%s) and AutoReconnect is off", self.address, reason)
            if self._on_lost:
                self._on_lost()
        elif was_connected:
            log.warning("lost MessageBus %s (%s); reconnecting", self.address, reason)
