"""The service's place in an EdgeX deployment: registry, core-metadata, core-data export, actuation.

Each part runs on a thread of its own and only hears of result events through
Service.result_listeners, so none of them can hold up inference.
"""

from __future__ import annotations

from pathlib import Path
from typing import Protocol

from .actuation import Actuator
from .core_data import CoreDataExport
from .metadata import MetadataSync
from .registry import Registration
from .service import Service


class Part(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...


class Deployment:
    def __init__(self, service: Service, *, register: bool, base_dir: Path = Path()) -> None:
        config = service.config
        manifests = {name: loaded.manifest for name, loaded in service.models.models.items()}
        self.parts: list[Part] = []
        if register:
            self.parts.append(Registration(config))
        if config.metadata.enabled:
            profiles = {manifest.result_profile for manifest in manifests.values()}
            metadata = MetadataSync(config, profiles, base_dir)
            self.parts.append(metadata)
            service.result_listeners.append(metadata.on_result)
        if config.inference.export in ("rest", "both"):
            export = CoreDataExport(config.clients["core-data"], service.metrics)
            self.parts.append(export)
            service.result_listeners.append(export.on_result)
        if config.actuations:
            actuator = Actuator(config.actuations, manifests, service.metrics,
                                config.clients["core-command"], service.bus,
                                prefix=service.prefix,
                                escape=config.service.enable_name_field_escape)
            self.parts.append(actuator)
            service.result_listeners.append(actuator.on_result)

    def start(self) -> None:
        for part in self.parts:
            part.start()

    def stop(self) -> None:
        """After the service stopped: send what is queued, then deregister last."""
        for part in reversed(self.parts):
            part.stop()
