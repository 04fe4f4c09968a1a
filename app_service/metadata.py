"""core-metadata: the result profiles, the device service and (optionally) the result devices.

So that EdgeX UI's metadata pages know what the result events are. Done in a background thread
that retries with backoff until core-metadata answers; inference never waits for it. Every step
reads first and writes only what is missing or changed, so restarts are harmless.
"""

from __future__ import annotations

import logging
import queue
from functools import partial
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests
import yaml

from . import SERVICE_KEY
from .background import Background
from .clients import base_request, call, json_of, keep_trying, multi_status, url_of
from .config import Config
from .dtos import Event

log = logging.getLogger(__name__)

_STOP = ("", "")


def result_profiles(profiles_dir: Path, names: set[str]) -> list[dict[str, Any]]:
    """The device profiles in `profiles_dir` named in `names` (the models' resultProfile)."""
    found: dict[str, dict[str, Any]] = {}
    for path in sorted(profiles_dir.glob("*.yaml")):
        try:
            profile = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            log.error("skipping device profile %s: %s", path, exc)
            continue
        if isinstance(profile, dict) and profile.get("name") in names:
            found[profile["name"]] = profile
    for name in sorted(names - found.keys()):
        log.error("no device profile named %r in %s: core-metadata will not know its result events",
                  name, profiles_dir)
    return [found[name] for name in sorted(found)]


def contains(stored: Any, wanted: Any) -> bool:
    """Whether `stored` (as core-metadata answers it, with ids and defaults) holds all of `wanted`."""
    if isinstance(wanted, dict):
        return isinstance(stored, dict) and all(
            contains(stored.get(key), value) for key, value in wanted.items())
    if isinstance(wanted, list):
        return (isinstance(stored, list) and len(stored) == len(wanted)
                and all(contains(s, w) for s, w in zip(stored, wanted, strict=True)))
    return stored == wanted or (stored is None and wanted in ("", False, 0))


class MetadataSync(Background):
    def __init__(self, config: Config, profile_names: set[str], base_dir: Path = Path(),
                 session: requests.Session | None = None) -> None:
        super().__init__("core-metadata")
        self.client = config.clients["core-metadata"]
        self.create_devices = config.metadata.create_devices
        self.session = session or requests.Session()
        self.profiles = result_profiles(base_dir / config.metadata.profiles_dir, profile_names)
        self.base_address = f"http://{config.service.host}:{config.service.port}"
        self._devices: queue.Queue[tuple[str, str]] = queue.Queue()
        self._requested: set[str] = set()

    def stop(self, timeout: float | None = None) -> None:
        self._devices.put(_STOP)  # wakes run() if it waits for a device
        super().stop(timeout)

    def on_result(self, event: Event) -> None:
        """Called with every result event (on the inference worker: keep it a set lookup)."""
        if not self.create_devices or event.device_name in self._requested:
            return
        self._requested.add(event.device_name)
        self._devices.put((event.device_name, event.profile_name))

    def run(self) -> None:
        if not keep_trying(f"syncing core-metadata at {self.client.url}", self.sync, self.stopping):
            return
        known = {profile["name"] for profile in self.profiles}
        while (item := self._devices.get()) is not _STOP:
            device, profile = item
            if profile in known:
                keep_trying(f"creating device {device} in core-metadata",
                            partial(self.ensure_device, device, profile), self.stopping)

    def sync(self) -> None:
        for profile in self.profiles:
            self.ensure_profile(profile)
        self.ensure_device_service()

    def _call(self, method: str, path: str, **kwargs: Any) -> requests.Response:
        return call(self.session, method, url_of(self.client, path), **kwargs)

    def _find(self, kind: str, name: str) -> dict[str, Any] | None:
        """GET /{kind}/name/{name}: the answer, or None when core-metadata has no such entity."""
        response = self._call("GET", f"{kind}/name/{quote(name, safe='')}", ok=(200, 404))
        return json_of(response) if response.status_code == 200 else None

    def _write(self, method: str, kind: str, what: str, **kwargs: Any) -> None:
        """A core-metadata write of one entity; EdgeXError unless it took it."""
        multi_status(self._call(method, kind, ok=(207,), **kwargs), what)

    def ensure_profile(self, profile: dict[str, Any]) -> None:
        name = profile["name"]
        found = self._find("deviceprofile", name)
        if found is not None and contains(found.get("profile"), profile):
            return
        # PUT replaces the whole stored profile, as an edited profile file should
        method, done = ("POST", "uploaded") if found is None else ("PUT", "updated")
        self._write(method, "deviceprofile", f"device profile {name}",
                    json=[base_request(profile=profile)])
        log.info("%s device profile %s to core-metadata", done, name)

    def ensure_device_service(self) -> None:
        found = self._find("deviceservice", SERVICE_KEY)
        if found is None:
            service = {
                "name": SERVICE_KEY,
                "description": "TensorFlow Lite inference on EdgeX events; owns the result devices",
                "adminState": "UNLOCKED",
                "baseAddress": self.base_address,
                "labels": [SERVICE_KEY, "inference"],
            }
            method, done = "POST", "created"
        elif found.get("service", {}).get("baseAddress") == self.base_address:
            return
        else:
            # PATCH changes only the fields it names: labels or state set in EdgeX UI stay
            service = {"name": SERVICE_KEY, "baseAddress": self.base_address}
            method, done = "PATCH", "updated"
        self._write(method, "deviceservice", f"device service {SERVICE_KEY}",
                    json=[base_request(service=service)])
        log.info("%s device service %s (%s) in core-metadata", done, SERVICE_KEY, self.base_address)

    def ensure_device(self, name: str, profile: str) -> None:
        """A device named as the result's source device, unless one exists (its own service's)."""
        if self._find("device", name) is not None:
            return
        device = {
            "name": name,
            "description": f"Inference results for {name}",
            "adminState": "UNLOCKED",
            "operatingState": "UP",
            "serviceName": SERVICE_KEY,
            "profileName": profile,
            "labels": [SERVICE_KEY, "inference-result"],
            "protocols": {"other": {}},
        }
        # Without bypassValidation, 4.x metadata would ask this "device service" over the bus
        # to validate the device, and time out.
        self._write("POST", "device", f"device {name}", params={"bypassValidation": "true"},
                    json=[base_request(device=device)])
        log.info("created result device %s (profile %s) in core-metadata", name, profile)
