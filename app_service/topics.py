"""MessageBus topic names: building them, reading the names back, and EdgeX's level escaping."""

from __future__ import annotations

from urllib.parse import quote, unquote

from . import SERVICE_KEY

# Beyond URL path escaping, EdgeX escapes these so a name cannot act as an MQTT wildcard or
# split a topic level.
_EXTRA = str.maketrans({"+": "%2B", "-": "%2D", ".": "%2E", "_": "%5F", "~": "%7E"})


def escape_level(name: str) -> str:
    """Service.EnableNameFieldEscape: `this-is_test.string~` -> `this%2Dis%5Ftest%2Estring%7E`."""
    return quote(name, safe="$&+:=@").translate(_EXTRA)


def join(*levels: str) -> str:
    return "/".join(level.strip("/") for level in levels if level)


def event_topic(prefix: str, profile: str, device: str, source: str, *, escape: bool = False,
                service: str = SERVICE_KEY) -> str:
    """Where a device service named `service` publishes an event that core-data will store."""
    names = (service, profile, device, source)
    if escape:
        names = tuple(escape_level(name) for name in names)
    return join(prefix, "events/device", *names)


def publisher_of(topic: str, prefix: str) -> str:
    """The {deviceService} level of an events topic, unescaped ('' if the topic has none)."""
    levels = topic.split("/")
    base = len([level for level in prefix.split("/") if level])
    if len(levels) > base + 2 and levels[base] == "events":
        return unquote(levels[base + 2])
    return ""


def subscriptions(prefix: str, topics: str) -> list[str]:
    """Trigger.SubscribeTopics: comma-separated, each under the BaseTopicPrefix.

    A shared subscription (`$share/GROUP/events/device/#`, for replicas that split one stream)
    keeps its `$share/GROUP/` in front of the prefix."""
    result = []
    for topic in (t.strip() for t in topics.split(",")):
        if not topic:
            continue
        share = ""
        if topic.startswith("$share/"):
            _, group, topic = topic.split("/", 2)
            share = f"$share/{group}/"
        result.append(share + join(prefix, topic))
    return result
