"""The service's place in an EdgeX deployment: registry, core-metadata, core-data export, actuation.

Each part runs on a thread of its own and only hears of result events through
Service.result_listeners, so none of them can hold up inference.
"""

from __future__ import annotations

from pathlib import Path

from .actuation import Actuator
from .background import Background
from .core_data import CoreDataExport
from .metadata import MetadataSync
from .registry import Registration
from .service import Service


class Deployment:
    def __init__(self, service: Service, *, register: bool, base_dir: Path = Path()) -> None:
        config = service.config
        manifests = {name: loaded.manifest for name, loaded in service.models.models.items()}
        listeners: list[MetadataSync | CoreDataExport | Actuator] = []
        if config.metadata.enabled:
            profiles = {manifest.result_profile for manifest in manifests.values()}
            listeners.append(MetadataSync(config, profiles, base_dir))
        if config.inference.export in ("rest", "both"):
            listeners.append(CoreDataExport(config.clients["core-data"], service.metrics))
        if config.actuations:
            listeners.append(Actuator(config.actuations, manifests, service.metrics,
                                      config.clients["core-command"], service.bus,
                                      prefix=service.prefix,
                                      escape=config.service.enable_name_field_escape,
                                      base64_payload=service.base64_payload))
        service.result_listeners.extend(part.on_result for part in listeners)
        self.parts: list[Background] = [Registration(config)] if register else []
        self.parts += listeners

    def start(self) -> None:
        for part in self.parts:
            part.start()

    def stop(self) -> None:
        """Once inference has stopped, while the bus is still up: send what is queued (exports,
        actuations), then deregister last."""
        for part in reversed(self.parts):
            part.stop()
