"""core-metadata: the result profiles, the device service and (optionally) the result devices.

So that EdgeX UI's metadata pages know what the result events are. Done in a background thread
that retries with backoff until core-metadata answers; inference never waits for it. Every step
reads first and writes only what is missing or changed, so restarts are harmless.
"""

from __future__ import annotations

import logging
import queue
import threading
from pathlib import Path
from typing import Any
from urllib.parse import quote

import requests
import yaml

from . import SERVICE_KEY
from .clients import base_request, call, keep_trying, multi_status, url_of
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


class MetadataSync:
    def __init__(self, config: Config, profile_names: set[str], base_dir: Path = Path(),
                 session: requests.Session | None = None) -> None:
        self.config = config
        self.client = config.clients["core-metadata"]
        self.session = session or requests.Session()
        self.profiles = result_profiles(base_dir / config.metadata.profiles_dir, profile_names)
        service = config.service
        self.base_address = f"http://{service.host}:{service.port}"
        self._devices: queue.Queue[tuple[str, str]] = queue.Queue()
        self._requested: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="core-metadata", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._devices.put(_STOP)
        self._thread.join()

    def on_result(self, event: Event) -> None:
        """Called with every result event (on the inference worker: keep it a set lookup)."""
        if event.device_name in self._requested or not self.config.metadata.create_devices:
            return
        self._requested.add(event.device_name)
        self._devices.put((event.device_name, event.profile_name))

    def _run(self) -> None:
        if not keep_trying(f"syncing core-metadata at {self.client.url}", self.sync, self._stop):
            return
        known = {profile["name"] for profile in self.profiles}
        while True:
            device, profile = self._devices.get()
            if self._stop.is_set():
                return
            if profile in known:
                keep_trying(f"creating device {device} in core-metadata",
                            lambda d=device, p=profile: self.ensure_device(d, p), self._stop)

    def sync(self) -> None:
        for profile in self.profiles:
            self.ensure_profile(profile)
        self.ensure_device_service()

    def ensure_profile(self, profile: dict[str, Any]) -> None:
        name = profile["name"]
        response = call(self.session, "GET",
                        url_of(self.client, f"deviceprofile/name/{quote(name, safe='')}"),
                        ok=(200, 404))
        if response.status_code == 200 and contains(response.json()["profile"], profile):
            return
        method, done = ("POST", "uploaded") if response.status_code == 404 else ("PUT", "updated")
        answer = call(self.session, method, url_of(self.client, "deviceprofile"),
                      json=[base_request(profile=profile)], ok=(207,))
        multi_status(answer, f"device profile {name}")
        log.info("%s device profile %s to core-metadata", done, name)

    def ensure_device_service(self) -> None:
        response = call(self.session, "GET",
                        url_of(self.client, f"deviceservice/name/{SERVICE_KEY}"), ok=(200, 404))
        if response.status_code == 200:
            if response.json()["service"].get("baseAddress") == self.base_address:
                return
            body = {"name": SERVICE_KEY, "baseAddress": self.base_address}
            answer = call(self.session, "PATCH", url_of(self.client, "deviceservice"),
                          json=[base_request(service=body)], ok=(207,))
            done = "updated"
        else:
            body = {
                "name": SERVICE_KEY,
                "description": "TensorFlow Lite inference on EdgeX events; owns the result devices",
                "adminState": "UNLOCKED",
                "baseAddress": self.base_address,
                "labels": [SERVICE_KEY, "inference"],
            }
            answer = call(self.session, "POST", url_of(self.client, "deviceservice"),
                          json=[base_request(service=body)], ok=(207,))
            done = "created"
        multi_status(answer, f"device service {SERVICE_KEY}")
        log.info("%s device service %s (%s) in core-metadata", done, SERVICE_KEY, self.base_address)

    def ensure_device(self, name: str, profile: str) -> None:
        """A device named as the result's source device, unless one exists (its own service's)."""
        response = call(self.session, "GET",
                        url_of(self.client, f"device/name/{quote(name, safe='')}"), ok=(200, 404))
        if response.status_code == 200:
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
        answer = call(self.session, "POST", url_of(self.client, "device"),
                      params={"bypassValidation": "true"}, json=[base_request(device=device)],
                      ok=(207,))
        multi_status(answer, f"device {name}")
        log.info("created result device %s (profile %s) in core-metadata", name, profile)
