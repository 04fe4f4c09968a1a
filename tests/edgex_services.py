"""What the EdgeX stand-in's services do with a valid request: state and answers.

Requests reach these handlers only after tests/edgex_standin.py checked them against the spec.
A handler raises `Rejected` for what EdgeX's Go validation refuses (tests/edgex_rules.py), and
answers 404 or 409 where the state calls for it, as EdgeX does.
"""

from __future__ import annotations

import base64
import json
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml

from . import edgex_rules
from .openapi_specs import load_spec

Answer = tuple[int, Any]


class Rejected(Exception):
    """EdgeX answers 400: the request breaks a rule of its DTOs."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("; ".join(problems))
        self.problems = problems


@dataclass
class State:
    profiles: dict[str, dict] = field(default_factory=dict)
    device_services: dict[str, dict] = field(default_factory=dict)
    devices: dict[str, dict] = field(default_factory=dict)
    events: list[dict] = field(default_factory=list)
    registrations: dict[str, dict] = field(default_factory=dict)  # core-keeper, by serviceId
    consul_services: dict[str, dict] = field(default_factory=dict)  # by ID
    kv: dict[str, str] = field(default_factory=dict)  # core-keeper's and Consul's store
    commands: list[dict] = field(default_factory=list)  # {device, command, settings} of core-command PUTs


@dataclass
class Call:
    service: str
    path_params: dict[str, str]
    query: dict[str, Any]
    body: Any
    base_url: str  # of the service answering

    @property
    def request_id(self) -> str:
        return self.body.get("requestId", "") if isinstance(self.body, dict) else ""


Handler = Callable[[State, Call], Answer]
ROUTES: dict[tuple[str, str, str], Handler] = {}


def route(service: str, method: str, path: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        ROUTES[service, method, path] = handler
        return handler

    return register


def answer(status: int, request_id: str = "", **fields: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"apiVersion": "v3", "statusCode": status, **fields}
    if request_id:
        body["requestId"] = request_id
    return body


def error(status: int, message: str, request_id: str = "") -> dict[str, Any]:
    return answer(status, request_id, message=message)


def _now() -> int:
    return time.time_ns() // 1_000_000


def _page(items: list, query: dict[str, Any]) -> list:
    offset = max(query.get("offset", 0), 0)
    limit = query.get("limit", 20)
    return items[offset:] if limit < 0 else items[offset : offset + limit]


def _listing(key: str, items: list, query: dict[str, Any]) -> Answer:
    return 200, answer(200, totalCount=len(items), **{key: _page(items, query)})


def _by_name(store: dict[str, dict], kind: str, name: str, key: str) -> Answer:
    if name not in store:
        return 404, error(404, f"{kind} {name} does not exist")
    return 200, answer(200, **{key: store[name]})


def _delete(store: dict[str, dict], kind: str, name: str, in_use: bool) -> Answer:
    if name not in store:
        return 404, error(404, f"{kind} {name} does not exist")
    if in_use:
        return 409, error(409, f"{kind} {name} is still in use by devices")
    del store[name]
    return 200, answer(200)


def _each(
    call: Call, key: str, rules: Callable[[dict], list[str]], apply: Callable[[dict, str], dict]
) -> Answer:
    """The multi-status pattern of core-metadata: the whole array is validated first, as EdgeX
    decodes it, then each element gets its own answer."""
    problems = [problem for item in call.body for problem in rules(item[key])]
    if problems:
        raise Rejected(problems)
    return 207, [apply(item[key], item.get("requestId", "")) for item in call.body]


def _add(store: dict[str, dict], kind: str, item: dict, request_id: str) -> dict:
    if item["name"] in store:
        return error(409, f"{kind} {item['name']} already exists", request_id)
    entity = {**item, "id": str(uuid.uuid4()), "created": _now(), "modified": _now()}
    store[item["name"]] = entity
    return answer(201, request_id, id=entity["id"])


def _update(store: dict[str, dict], kind: str, item: dict, request_id: str, replace: bool) -> dict:
    current = store.get(item.get("name", "")) or next(
        (e for e in store.values() if e["id"] == item.get("id")), None
    )
    if current is None:
        return error(404, f"{kind} {item.get('name') or item.get('id')} does not exist", request_id)
    fields = item if replace else {k: v for k, v in item.items() if v is not None}
    updated = {**({} if replace else current), **fields}
    updated.update(id=current["id"], created=current["created"], modified=_now())
    del store[current["name"]]
    store[updated["name"]] = updated
    return answer(200, request_id)


# --- every service


def ping(state: State, call: Call) -> Answer:
    now = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime())
    return 200, {"apiVersion": "v3", "timestamp": now, "serviceName": call.service}


def version(state: State, call: Call) -> Answer:
    return 200, {"apiVersion": "v3", "version": "4.0.2", "serviceName": call.service}


def config(state: State, call: Call) -> Answer:
    return 200, {"apiVersion": "v3", "serviceName": call.service, "config": {}}


for _service in ("core-keeper", "core-metadata", "core-data", "core-command"):
    route(_service, "GET", "/ping")(ping)
    route(_service, "GET", "/version")(version)
    route(_service, "GET", "/config")(config)


# --- core-keeper: registry and configuration


def _kv_keys(state: State, key: str) -> list[str]:
    prefix = key.rstrip("/")
    return sorted(k for k in state.kv if k == prefix or k.startswith(prefix + "/"))


def _kv_string(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    return value if isinstance(value, str) else json.dumps(value)


def flatten(prefix: str, tree: Any) -> dict[str, str]:
    """A nested config map as keeper/Consul keys, one per leaf: {"A": {"B": 1}} -> {"p/A/B": "1"}."""
    if not isinstance(tree, dict):
        return {prefix: _kv_string(tree)}
    return {k: v for name, child in tree.items() for k, v in flatten(f"{prefix}/{name}", child).items()}


@route("core-keeper", "GET", "/kvs/key/{key}")
def get_keys(state: State, call: Call) -> Answer:
    keys = _kv_keys(state, call.path_params["key"])
    if not keys:
        return 404, error(404, f"no key starts with {call.path_params['key']}")
    if call.query.get("keyOnly"):
        return 200, answer(200, response=keys)
    plain = call.query.get("plaintext", False)
    return 200, answer(
        200,
        response=[
            {
                "key": k,
                "value": state.kv[k] if plain else base64.b64encode(state.kv[k].encode()).decode(),
                "created": _now(),
                "modified": _now(),
            }
            for k in keys
        ],
    )


@route("core-keeper", "PUT", "/kvs/key/{key}")
def put_keys(state: State, call: Call) -> Answer:
    value = call.body.get("value")
    if value is None or value == {}:
        raise Rejected(["the value field is undefined or an empty object"])
    key = call.path_params["key"].rstrip("/")
    entries = flatten(key, value) if call.query.get("flatten") else {key: _kv_string(value)}
    state.kv.update(entries)
    return 200, answer(200, response=sorted(entries))


@route("core-keeper", "DELETE", "/kvs/key/{key}")
def delete_keys(state: State, call: Call) -> Answer:
    key = call.path_params["key"]
    keys = _kv_keys(state, key) if call.query.get("prefixMatch") else [k for k in state.kv if k == key]
    if not keys:
        return 404, error(404, f"key {key} does not exist")
    for k in keys:
        del state.kv[k]
    return 200, answer(200, response=keys)


def _registration(state: State, call: Call) -> tuple[dict, dict | None]:
    """The valid registration of a POST or PUT /registry, and what is registered under its id."""
    registration = call.body["registration"]
    if problems := edgex_rules.registration_problems(registration):
        raise Rejected(problems)
    return registration, state.registrations.get(registration["serviceId"])


@route("core-keeper", "POST", "/registry")
def register(state: State, call: Call) -> Answer:
    registration, current = _registration(state, call)
    if current and current["status"] != "HALT":
        return 409, error(409, f"service {registration['serviceId']} is already registered")
    now = _now()
    state.registrations[registration["serviceId"]] = {
        "status": "UNKNOWN",
        **registration,
        "created": now,
        "modified": now,
    }
    return 201, None


@route("core-keeper", "PUT", "/registry")
def update_registration(state: State, call: Call) -> Answer:
    registration, current = _registration(state, call)
    if current is None:
        return 404, error(404, f"service {registration['serviceId']} is not registered")
    current.update(registration, status=registration.get("status") or "UNKNOWN", modified=_now())
    return 204, None


@route("core-keeper", "GET", "/registry/serviceId/{serviceId}")
def get_registration(state: State, call: Call) -> Answer:
    return _by_name(state.registrations, "service", call.path_params["serviceId"], "registration")


@route("core-keeper", "DELETE", "/registry/serviceId/{serviceId}")
def deregister(state: State, call: Call) -> Answer:
    current = state.registrations.get(call.path_params["serviceId"])
    if current is None:
        return 404, error(404, f"service {call.path_params['serviceId']} is not registered")
    current.update(status="HALT", modified=_now())
    return 204, None


@route("core-keeper", "GET", "/registry/all")
def all_registrations(state: State, call: Call) -> Answer:
    shown = [
        r for r in state.registrations.values() if call.query.get("deregistered") or r["status"] != "HALT"
    ]
    return 200, answer(200, totalCount=len(shown), registrations=shown)


# --- core-metadata


@route("core-metadata", "POST", "/deviceprofile")
def add_profiles(state: State, call: Call) -> Answer:
    return _each(
        call, "profile", edgex_rules.profile_problems, lambda p, rid: _add(state.profiles, "profile", p, rid)
    )


@route("core-metadata", "PUT", "/deviceprofile")
def update_profiles(state: State, call: Call) -> Answer:
    def rules(profile: dict) -> list[str]:
        return edgex_rules.update_problems("profile", profile) + edgex_rules.profile_problems(profile)

    return _each(
        call, "profile", rules, lambda p, rid: _update(state.profiles, "profile", p, rid, replace=True)
    )


def _uploaded_profile(parts: dict[str, bytes]) -> dict:
    """The profile of an uploadfile request, as metadata reads it; Rejected if it would refuse it."""
    if "file" not in parts:
        raise Rejected(["multipart form has no 'file' part"])
    try:
        profile = yaml.safe_load(parts["file"])
    except yaml.YAMLError as e:
        raise Rejected([f"file is not YAML: {e}"]) from e
    if not isinstance(profile, dict):
        raise Rejected(["file is not a YAML mapping"])
    spec = load_spec("core-metadata")
    if problems := spec.schema_errors(profile, "DeviceProfile", "file ") + edgex_rules.profile_problems(
        profile
    ):
        raise Rejected(problems)
    return profile


@route("core-metadata", "POST", "/deviceprofile/uploadfile")
def upload_new_profile(state: State, call: Call) -> Answer:
    return _upload_profile(state, _uploaded_profile(call.body), replace=False)


@route("core-metadata", "PUT", "/deviceprofile/uploadfile")
def upload_changed_profile(state: State, call: Call) -> Answer:
    return _upload_profile(state, _uploaded_profile(call.body), replace=True)


def _upload_profile(state: State, profile: dict, replace: bool) -> Answer:
    if not replace:
        result = _add(state.profiles, "profile", profile, "")
    elif profile["name"] in state.profiles:
        result = _update(state.profiles, "profile", profile, "", replace=True)
        result["id"] = state.profiles[profile["name"]]["id"]
    else:
        result = error(404, f"profile {profile['name']} does not exist")
    return result["statusCode"], result


@route("core-metadata", "POST", "/deviceservice")
def add_device_services(state: State, call: Call) -> Answer:
    return _each(
        call,
        "service",
        edgex_rules.device_service_problems,
        lambda s, rid: _add(state.device_services, "device service", s, rid),
    )


@route("core-metadata", "POST", "/device")
def add_devices(state: State, call: Call) -> Answer:
    if not call.query.get("bypassValidation"):
        # 4.x metadata asks the owning device service over the bus and times out if none answers.
        raise Rejected(
            [
                "POST /device without bypassValidation=true: metadata would wait for the device "
                "service to validate the device and time out"
            ]
        )

    def add(device: dict, request_id: str) -> dict:
        if device["serviceName"] not in state.device_services:
            return error(404, f"device service {device['serviceName']} does not exist", request_id)
        if device.get("profileName") and device["profileName"] not in state.profiles:
            return error(404, f"device profile {device['profileName']} does not exist", request_id)
        return _add(state.devices, "device", device, request_id)

    return _each(call, "device", edgex_rules.device_problems, add)


def _entity_routes(
    path: str, kind: str, key: str, store: Callable[[State], dict[str, dict]], field: str | None
) -> None:
    """GET by name, GET all, DELETE by name and (unless profiles, which PUT) PATCH of a metadata
    entity; `field` names the device field that refers to it, so deleting a used one is a 409."""

    def get(state: State, call: Call) -> Answer:
        return _by_name(store(state), kind, call.path_params["name"], key)

    def listing(state: State, call: Call) -> Answer:
        return _listing(f"{key}s", list(store(state).values()), call.query)

    def delete(state: State, call: Call) -> Answer:
        name = call.path_params["name"]
        in_use = field is not None and any(d.get(field) == name for d in state.devices.values())
        return _delete(store(state), kind, name, in_use)

    def patch(state: State, call: Call) -> Answer:
        return _each(
            call,
            key,
            lambda item: edgex_rules.update_problems(kind, item),
            lambda item, rid: _update(store(state), kind, item, rid, replace=False),
        )

    route("core-metadata", "GET", f"{path}/name/{{name}}")(get)
    route("core-metadata", "GET", f"{path}/all")(listing)
    route("core-metadata", "DELETE", f"{path}/name/{{name}}")(delete)
    if path != "/deviceprofile":
        route("core-metadata", "PATCH", path)(patch)


_entity_routes("/deviceprofile", "profile", "profile", lambda state: state.profiles, "profileName")
_entity_routes(
    "/deviceservice", "device service", "service", lambda state: state.device_services, "serviceName"
)
_entity_routes("/device", "device", "device", lambda state: state.devices, None)


@route("core-metadata", "GET", "/device/check/name/{name}")
def check_device(state: State, call: Call) -> Answer:
    name = call.path_params["name"]
    return (200, answer(200)) if name in state.devices else (404, error(404, f"device {name} does not exist"))


@route("core-metadata", "GET", "/device/service/name/{name}")
def devices_of_service(state: State, call: Call) -> Answer:
    name = call.path_params["name"]
    return _listing("devices", [d for d in state.devices.values() if d["serviceName"] == name], call.query)


@route("core-metadata", "GET", "/device/profile/name/{name}")
def devices_of_profile(state: State, call: Call) -> Answer:
    name = call.path_params["name"]
    return _listing(
        "devices", [d for d in state.devices.values() if d.get("profileName") == name], call.query
    )


# --- core-data


@route("core-data", "POST", "/event/{serviceName}/{profileName}/{deviceName}/{sourceName}")
def add_event(state: State, call: Call) -> Answer:
    event = call.body["event"]
    problems = edgex_rules.event_problems(event)
    problems += [
        f"path {name} {call.path_params[name]!r} differs from the event's {event.get(name)!r}"
        for name in ("profileName", "deviceName", "sourceName")
        if call.path_params[name] != event.get(name)
    ]
    if problems:
        raise Rejected(problems)
    if any(e["id"] == event["id"] for e in state.events):
        return 409, error(409, f"event {event['id']} already exists", call.request_id)
    state.events.append(event)
    return 201, answer(201, call.request_id, id=event["id"])


def _events(state: State, device: str | None = None) -> list[dict]:
    chosen = [e for e in state.events if device is None or e["deviceName"] == device]
    return sorted(chosen, key=lambda e: e["origin"], reverse=True)


def _readings(state: State, device: str | None = None, resource: str | None = None) -> list[dict]:
    return [
        r
        for e in _events(state, device)
        for r in e["readings"]
        if resource is None or r["resourceName"] == resource
    ]


@route("core-data", "GET", "/event/all")
def all_events(state: State, call: Call) -> Answer:
    return _listing("events", _events(state), call.query)


@route("core-data", "GET", "/event/device/name/{name}")
def device_events(state: State, call: Call) -> Answer:
    return _listing("events", _events(state, call.path_params["name"]), call.query)


@route("core-data", "GET", "/event/id/{id}")
def get_event(state: State, call: Call) -> Answer:
    found = [e for e in state.events if e["id"] == call.path_params["id"]]
    if not found:
        return 404, error(404, f"event {call.path_params['id']} does not exist")
    return 200, answer(200, event=found[0])


@route("core-data", "GET", "/event/count")
def count_events(state: State, call: Call) -> Answer:
    return 200, answer(200, count=len(state.events))


@route("core-data", "GET", "/event/count/device/name/{name}")
def count_device_events(state: State, call: Call) -> Answer:
    return 200, answer(200, count=len(_events(state, call.path_params["name"])))


@route("core-data", "GET", "/reading/all")
def all_readings(state: State, call: Call) -> Answer:
    return _listing("readings", _readings(state), call.query)


@route("core-data", "GET", "/reading/count")
def count_readings(state: State, call: Call) -> Answer:
    return 200, answer(200, count=len(_readings(state)))


@route("core-data", "GET", "/reading/device/name/{name}")
def device_readings(state: State, call: Call) -> Answer:
    return _listing("readings", _readings(state, call.path_params["name"]), call.query)


@route("core-data", "GET", "/reading/resourceName/{resourceName}")
def resource_readings(state: State, call: Call) -> Answer:
    return _listing("readings", _readings(state, resource=call.path_params["resourceName"]), call.query)


@route("core-data", "GET", "/reading/device/name/{deviceName}/resourceName/{resourceName}")
def device_resource_readings(state: State, call: Call) -> Answer:
    readings = _readings(state, call.path_params["deviceName"], call.path_params["resourceName"])
    return _listing("readings", readings, call.query)


# --- core-command


def core_commands(device: dict, profile: dict | None, base_url: str) -> list[dict]:
    """The commands core-command offers for a device: its profile's visible commands and resources."""
    if profile is None:
        return []
    resources = {r["name"]: r for r in profile.get("deviceResources") or []}
    offered = {
        c["name"]: (c["readWrite"], [o["deviceResource"] for o in c["resourceOperations"]])
        for c in profile.get("deviceCommands") or []
        if not c.get("isHidden")
    }
    for name, resource in resources.items():
        if not resource.get("isHidden"):
            offered.setdefault(name, (resource["properties"]["readWrite"], [name]))
    return [
        {
            "name": name,
            "get": "R" in access,
            "set": "W" in access,
            "path": f"/api/v3/device/name/{device['name']}/{name}",
            "url": base_url,
            "parameters": [
                {"resourceName": r, "valueType": resources[r]["properties"]["valueType"]} for r in used
            ],
        }
        for name, (access, used) in offered.items()
    ]


def _device_commands(state: State, device: dict, base_url: str) -> dict:
    return {
        "deviceName": device["name"],
        "profileName": device.get("profileName", ""),
        "coreCommands": core_commands(device, state.profiles.get(device.get("profileName", "")), base_url),
    }


@route("core-command", "GET", "/device/name/{name}")
def device_commands(state: State, call: Call) -> Answer:
    device = state.devices.get(call.path_params["name"])
    if device is None:
        return 404, error(404, f"device {call.path_params['name']} does not exist")
    return 200, answer(200, deviceCoreCommand=_device_commands(state, device, call.base_url))


@route("core-command", "GET", "/device/all")
def all_device_commands(state: State, call: Call) -> Answer:
    listed = [_device_commands(state, d, call.base_url) for d in state.devices.values()]
    return _listing("deviceCoreCommands", listed, call.query)


@route("core-command", "PUT", "/device/name/{name}/{command}")
def set_command(state: State, call: Call) -> Answer:
    name, command_name = call.path_params["name"], call.path_params["command"]
    device = state.devices.get(name)
    if device is None:
        return 404, error(404, f"device {name} does not exist")
    commands = {c["name"]: c for c in _device_commands(state, device, call.base_url)["coreCommands"]}
    command = commands.get(command_name)
    if command is None:
        return 404, error(404, f"device {name} has no command {command_name}")
    if device.get("adminState") == "LOCKED":
        return 423, error(423, f"device {name} is locked")
    types = {p["resourceName"]: p["valueType"] for p in command["parameters"]}
    problems = [] if command["set"] else [f"command {command_name} of {name} is read-only"]
    for resource, value in call.body.items():
        if resource not in types:
            problems.append(f"command {command_name} has no resource {resource} (only {sorted(types)})")
        elif problem := edgex_rules.value_problem(types[resource], value):
            problems.append(f"setting {resource}: {problem}")
    if problems:
        raise Rejected(problems)
    state.commands.append({"device": name, "command": command_name, "settings": call.body})
    return 200, answer(200)


# --- Consul (3.x registry and configuration): no spec, its own routes


def consul(state: State, method: str, path: str, query: dict[str, str], body: bytes) -> Answer:
    """Consul's agent and KV endpoints that EdgeX services use."""
    if method == "PUT" and path == "/v1/agent/service/register":
        registration = json.loads(body or b"null")
        if problems := edgex_rules.consul_registration_problems(registration):
            raise Rejected(problems)
        state.consul_services[registration["ID"]] = registration
        return 200, ""
    if method == "PUT" and path.startswith("/v1/agent/service/deregister/"):
        service_id = path.removeprefix("/v1/agent/service/deregister/")
        if state.consul_services.pop(service_id, None) is None:
            return 404, f'Unknown service ID "{service_id}"'
        return 200, ""
    if method == "GET" and path == "/v1/agent/services":
        return 200, state.consul_services
    if method == "GET" and path == "/v1/status/leader":
        return 200, '"127.0.0.1:8300"'  # a JSON string, as Consul sends it
    if path.startswith("/v1/kv/"):
        return _consul_kv(state, method, path.removeprefix("/v1/kv/"), query, body)
    raise LookupError(f"Consul stand-in has no {method} {path}")


def _consul_kv(state: State, method: str, key: str, query: dict[str, str], body: bytes) -> Answer:
    if method == "PUT":
        state.kv[key] = body.decode()
        return 200, True
    if method != "GET":
        raise LookupError(f"Consul stand-in has no {method} /v1/kv/")
    keys = (
        sorted(k for k in state.kv if k.startswith(key))
        if "recurse" in query or "keys" in query
        else ([key] if key in state.kv else [])
    )
    if not keys:
        return 404, ""
    if "keys" in query:
        return 200, keys
    return 200, [
        {
            "Key": k,
            "Value": base64.b64encode(state.kv[k].encode()).decode(),
            "Flags": 0,
            "CreateIndex": 1,
            "ModifyIndex": 1,
            "LockIndex": 0,
        }
        for k in keys
    ]
