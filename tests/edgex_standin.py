"""An EdgeX stand-in for tests, since EdgeX itself cannot run here.

One object plays core-keeper, core-metadata, core-data, core-command and Consul, each on its own
free port (a stdlib ThreadingHTTPServer in a thread), with one shared state. Every request is
checked against the EdgeX 4.0.2 OpenAPI specs (tests/openapi_specs.py) and against the rules of
EdgeX's Go DTOs (tests/edgex_rules.py); every answer is checked against the spec too. Whatever
real EdgeX would refuse is answered as EdgeX answers it and appended to `violations`, which the
`edgex` fixture turns into a test failure.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import HTTP
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import yaml

from .edgex_services import ROUTES, Answer, Call, Rejected, State, consul, error, flatten
from .openapi_specs import load_spec

EDGEX_SERVICES = ("core-keeper", "core-metadata", "core-data", "core-command")
SERVICES = (*EDGEX_SERVICES, "consul")


@dataclass
class RecordedRequest:
    service: str  # one of SERVICES
    method: str
    path: str  # percent-decoded, e.g. /api/v3/device/name/Pump-01
    query: dict[str, str]
    body: Any  # parsed JSON; for multipart/form-data, part name -> bytes
    route: str | None = None  # the spec's path template it matched, e.g. /device/name/{name}
    status: int = 0  # what the stand-in answered


class EdgeXStandIn(State):
    """Start with `start()` (or `with`), point the service under test at `url(service)` or `env()`,
    then inspect `requests`, `violations` and the state: `profiles`, `device_services`, `devices`,
    `events`, `registrations`, `consul_services`, `kv`, `commands`."""

    def __init__(self, host: str = "127.0.0.1") -> None:
        super().__init__()
        self.host = host
        self.requests: list[RecordedRequest] = []
        self.violations: list[str] = []
        # service -> status it answers every spec-valid request with, to test failure handling
        self.outages: dict[str, int] = {}
        self._servers: dict[str, ThreadingHTTPServer] = {}
        self._threads: list[threading.Thread] = []
        self._changed = threading.Condition()

    def start(self) -> EdgeXStandIn:
        for service in SERVICES:
            server = ThreadingHTTPServer((self.host, 0), _Handler)
            server.daemon_threads = True
            server.standin, server.service = self, service  # type: ignore[attr-defined]
            # a short poll interval keeps stop() quick: shutdown() waits for the next poll
            thread = threading.Thread(
                target=server.serve_forever, args=(0.05,), name=f"edgex-{service}", daemon=True
            )
            thread.start()
            self._servers[service] = server
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        # shutdown() blocks until its server's next poll: stop all of them at once
        stoppers = [threading.Thread(target=server.shutdown) for server in self._servers.values()]
        for thread in stoppers:
            thread.start()
        for thread in stoppers + self._threads:
            thread.join()
        for server in self._servers.values():
            server.server_close()

    def __enter__(self) -> EdgeXStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # --- where the services are

    def port(self, service: str) -> int:
        return self._servers[service].server_address[1]

    def url(self, service: str) -> str:
        return f"http://{self.host}:{self.port(service)}"

    @property
    def keeper_provider(self) -> str:
        """The -cp/--configProvider value for core-keeper (4.x)."""
        return f"keeper.{self.url('core-keeper')}"

    @property
    def consul_provider(self) -> str:
        """The -cp/--configProvider value for Consul (3.x)."""
        return f"consul.{self.url('consul')}"

    @property
    def clients(self) -> dict[str, dict[str, Any]]:
        """The `Clients` config section pointing at the stand-in."""
        return {s: {"Protocol": "http", "Host": self.host, "Port": self.port(s)} for s in EDGEX_SERVICES}

    def env(self) -> dict[str, str]:
        """Environment overrides pointing a service's Clients at the stand-in (CLIENTS_CORE_DATA_PORT...)."""
        return {
            f"CLIENTS_{service.upper().replace('-', '_')}_{key.upper()}": str(value)
            for service, client in self.clients.items()
            for key, value in client.items()
        }

    # --- state set up by tests (not requests, so neither recorded nor checked)

    def seed_kv(self, prefix: str, tree: Mapping[str, Any]) -> None:
        """Store a nested config map as one key per leaf below `prefix`, as EdgeX's bootstrapper does."""
        with self._changed:
            self.kv.update(flatten(prefix.rstrip("/"), tree))

    def add_profile(self, profile: dict[str, Any] | Path) -> dict[str, Any]:
        if isinstance(profile, Path):
            profile = yaml.safe_load(profile.read_text())
        return self._seed(self.profiles, profile)

    def add_device_service(self, name: str, base_address: str = "http://localhost:59999") -> dict[str, Any]:
        service = {"name": name, "adminState": "UNLOCKED", "baseAddress": base_address}
        return self._seed(self.device_services, service)

    def add_device(
        self,
        name: str,
        profile_name: str,
        service_name: str = "device-virtual",
        admin_state: str = "UNLOCKED",
    ) -> dict[str, Any]:
        if service_name not in self.device_services:
            self.add_device_service(service_name)
        device = {
            "name": name,
            "adminState": admin_state,
            "operatingState": "UP",
            "serviceName": service_name,
            "profileName": profile_name,
            "protocols": {"other": {}},
        }
        return self._seed(self.devices, device)

    def _seed(self, store: dict[str, dict], entity: dict[str, Any]) -> dict[str, Any]:
        with self._changed:
            store[entity["name"]] = {
                **entity,
                "id": entity.get("id") or str(uuid.uuid4()),
                "created": 1,
                "modified": 1,
            }
            return store[entity["name"]]

    # --- what happened

    def wait_for(self, matches: Callable[[RecordedRequest], bool], timeout: float = 30) -> RecordedRequest:
        """The first recorded request that `matches`, waiting for it up to `timeout` seconds."""
        with self._changed:
            self._changed.wait_for(lambda: any(matches(r) for r in self.requests), timeout)
            found = [r for r in self.requests if matches(r)]
        if not found:
            raise TimeoutError(f"no matching request to the EdgeX stand-in within {timeout}s")
        return found[0]

    def calls(self, service: str, method: str, route: str) -> list[RecordedRequest]:
        """Recorded requests that hit a spec route, e.g. calls("core-keeper", "PUT", "/registry")."""
        return [r for r in self.requests if (r.service, r.method, r.route) == (service, method, route)]

    def take_violations(self) -> list[str]:
        """Return and forget the violations, for tests that send bad requests on purpose."""
        with self._changed:
            taken, self.violations = self.violations, []
        return taken

    # --- serving

    def handle(self, service: str, method: str, target: str, content_type: str, raw: bytes) -> Answer:
        split = urlsplit(target)
        record = RecordedRequest(service, method, unquote(split.path), dict(parse_qsl(split.query)), None)
        with self._changed:
            self.requests.append(record)
            status, body = self._answer(record, split.path, content_type, raw)
            record.status = status
            self._changed.notify_all()
        return status, body

    def _answer(self, record: RecordedRequest, raw_path: str, content_type: str, raw: bytes) -> Answer:
        try:
            record.body = _parse_body(content_type, raw)
        except ValueError as e:
            if record.service != "consul":  # Consul's KV takes raw bytes
                return self._reject(record, [f"body cannot be parsed: {e}"])
            record.body = raw
        if record.service == "consul":
            try:
                return consul(self, record.method, record.path, record.query, raw)
            except Rejected as e:
                return self._reject(record, e.problems)
            except LookupError as e:
                return self._reject(record, [str(e)], 404)
        spec = load_spec(record.service)
        check = spec.check_request(record.method, raw_path, record.query, content_type, record.body)
        if check.operation is None or check.errors:
            return self._reject(record, check.errors, check.status)
        record.route = check.operation.route
        handler = ROUTES.get((record.service, record.method, record.route))
        if record.service in self.outages:
            status, body = self.outages[record.service], error(self.outages[record.service], "outage")
        elif handler is None:
            return self._reject(
                record, [f"the stand-in does not implement {record.method} {record.route}"], 500
            )
        else:
            call = Call(record.service, check.path_params, check.query, record.body, self.url(record.service))
            try:
                status, body = handler(self, call)
            except Rejected as e:
                status, body = self._reject(record, e.problems)
        self.violations += [
            f"stand-in bug, {record.service} {record.method} {record.path}: {problem}"
            for problem in spec.response_errors(check.operation, status, body)
        ]
        return status, body

    def _reject(self, record: RecordedRequest, problems: list[str], status: int = 400) -> Answer:
        self.violations += [f"{record.service} {record.method} {record.path}: {p}" for p in problems]
        return status, error(status, "; ".join(problems))


def _parse_body(content_type: str, raw: bytes) -> Any:
    """JSON (the default), multipart/form-data as {part name: bytes}, anything else as bytes."""
    if not raw:
        return None
    media = content_type.split(";")[0].strip()
    if media == "multipart/form-data":
        message = BytesParser(policy=HTTP).parsebytes(f"Content-Type: {content_type}\r\n\r\n".encode() + raw)
        if not message.is_multipart():
            raise ValueError("multipart/form-data without parts")
        return {
            part.get_param("name", header="content-disposition"): part.get_payload(decode=True)
            for part in message.iter_parts()
        }
    if media in ("", "application/json"):
        return json.loads(raw)
    return raw


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def _serve(self) -> None:
        raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        content_type = self.headers.get("Content-Type", "")
        status, body = self.server.standin.handle(  # type: ignore[attr-defined]
            self.server.service,
            self.command,
            self.path,
            content_type,
            raw,  # type: ignore[attr-defined]
        )
        text = isinstance(body, str)
        payload = (
            b"" if body is None or body == "" else (body.encode() if text else json.dumps(body).encode())
        )
        self.send_response(status)
        if payload:
            self.send_header("Content-Type", "text/plain" if text else "application/json")
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_GET = do_PUT = do_POST = do_DELETE = do_PATCH = _serve

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the recorded requests say what happened; stderr noise helps nobody
