"""Registry: registration with core-keeper (4.x) or Consul (3.x), so EdgeX UI lists the service.

The registry checks `GET /api/v3/ping` on Service.Host:Service.Port every
Service.HealthCheckInterval. The `Registry` section (Type, Host, Port) says where it is; with a
configuration provider it comes from the common configuration, as for every EdgeX service.
"""

from __future__ import annotations

import logging
from urllib.parse import quote

import requests

from . import SERVICE_KEY
from .background import Background
from .clients import EdgeXError, base_request, call, keep_trying
from .config import Config

log = logging.getLogger(__name__)

PING = "/api/v3/ping"


class Registration(Background):
    """Registers in the background (retrying until the registry answers); deregisters on stop."""

    def __init__(self, config: Config, session: requests.Session | None = None) -> None:
        super().__init__("registry")
        self.config = config
        self.url = f"http://{config.registry.host}:{config.registry.port}"
        self.session = session or requests.Session()
        self.registered = False

    def stop(self, timeout: float | None = None) -> None:
        super().stop(timeout)
        if not self.registered:
            return
        try:
            self.deregister()
            log.info("deregistered %s from %s", SERVICE_KEY, self.url)
        except EdgeXError as exc:
            log.error("could not deregister %s from the registry: %s", SERVICE_KEY, exc)

    def run(self) -> None:
        if keep_trying(f"registering with {self.config.registry.type} at {self.url}",
                       self.register, self.stopping):
            self.registered = True
            service = self.config.service
            log.info("registered %s (%s:%d, health check %s every %s) with %s", SERVICE_KEY,
                     service.host, service.port, PING, service.health_check_interval, self.url)

    def register(self) -> None:
        service = self.config.service
        if self.config.registry.type == "consul":
            call(self.session, "PUT", f"{self.url}/v1/agent/service/register", json={
                "ID": SERVICE_KEY,
                "Name": SERVICE_KEY,
                "Address": service.host,
                "Port": service.port,
                "Check": {
                    "HTTP": f"http://{service.host}:{service.port}{PING}",
                    "Interval": service.health_check_interval,
                },
            })
            return
        body = base_request(registration={
            "serviceId": SERVICE_KEY,
            "host": service.host,
            "port": service.port,
            "healthCheck": {"interval": service.health_check_interval, "path": PING, "type": "http"},
        })
        # core-keeper refuses a second POST for a serviceId it knows (left by a crash): update it
        response = call(self.session, "POST", f"{self.url}/api/v3/registry", json=body,
                        ok=(201, 409))
        if response.status_code == 409:
            call(self.session, "PUT", f"{self.url}/api/v3/registry", json=body, ok=(204,))

    def deregister(self) -> None:
        key = quote(SERVICE_KEY, safe="")
        if self.config.registry.type == "consul":
            call(self.session, "PUT", f"{self.url}/v1/agent/service/deregister/{key}")
        else:
            call(self.session, "DELETE", f"{self.url}/api/v3/registry/serviceId/{key}", ok=(204,))
