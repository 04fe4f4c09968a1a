"""The EdgeX 4.0.2 REST specs in ../shared/edgex/openapi, as checks for tests.

The specs are OpenAPI 3.1, whose schemas are JSON Schema 2020-12, so jsonschema validates them as
they are; `$ref`s resolve within the spec file. Where a spec disagrees with the running EdgeX
services and their Go clients, `_apply_errata` records the running behaviour, with the reason.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import yaml
from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

# CI clones the repository beside shared/, so the specs are always ../shared from the repo root.
SPEC_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "edgex" / "openapi"
SERVICES = ("core-command", "core-data", "core-keeper", "core-metadata")
METHODS = ("get", "put", "post", "delete", "patch")

FORMATS = FormatChecker(formats=())


@FORMATS.checks("uuid")
def _is_uuid_or_empty(value: object) -> bool:
    # Request DTOs declare requestId `validate:"len=0|uuid"`: EdgeX accepts "" where the spec says uuid.
    if not isinstance(value, str) or value == "":
        return True
    try:
        uuid.UUID(value)
    except ValueError:
        return False
    return len(value) == 36


@dataclass(frozen=True)
class Operation:
    service: str
    method: str  # upper case
    route: str  # path template below the base path, e.g. "/device/name/{name}"
    spec: dict[str, Any]
    parameters: tuple[dict[str, Any], ...]  # path-level and operation-level, $refs resolved


@dataclass(frozen=True)
class RequestCheck:
    """Outcome of checking one request: the operation it hit (if any) and what is wrong with it."""

    operation: Operation | None
    path_params: dict[str, str]
    query: dict[str, Any]  # query parameters converted to their schema types
    errors: list[str]
    status: int  # what EdgeX answers a request with these errors: 404, 405 or 400


class Spec:
    def __init__(self, service: str, document: dict[str, Any]) -> None:
        self.service = service
        self.document = document
        self.base_path = re.sub(r"^\w+://[^/]+", "", document["servers"][0]["url"]).rstrip("/")
        self._uri = f"urn:edgex:{service}"
        # Absolute $refs let any schema taken out of the document resolve on its own.
        _absolute_refs(document, self._uri)
        self._registry = Registry().with_resource(
            self._uri, Resource(contents=document, specification=DRAFT202012)
        )
        self.operations = [
            Operation(
                service,
                method.upper(),
                route,
                operation,
                tuple(self._resolve(p) for p in item.get("parameters", []) + operation.get("parameters", [])),
            )
            for route, item in document["paths"].items()
            for method, operation in item.items()
            if method in METHODS
        ]
        self._routes = {op.route: _route_pattern(op.route) for op in self.operations}

    def _resolve(self, node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            node = self._registry.resolver().lookup(node["$ref"]).contents
        return node

    def validator(self, schema: dict[str, Any] | str) -> Draft202012Validator:
        """A validator for an inline schema of this spec, or for a component schema by name."""
        if isinstance(schema, str):
            if schema not in self.document["components"]["schemas"]:
                raise KeyError(f"{self.service} spec has no component schema {schema!r}")
            schema = {"$ref": f"{self._uri}#/components/schemas/{schema}"}
        return Draft202012Validator(schema, registry=self._registry, format_checker=FORMATS)

    def schema_errors(self, instance: Any, schema: dict[str, Any] | str, where: str = "") -> list[str]:
        return [
            f"{where}{'/'.join(map(str, e.absolute_path)) or '(body)'}: {e.message}"
            for e in sorted(self.validator(schema).iter_errors(instance), key=lambda e: e.path)
        ]

    def check_request(
        self, method: str, raw_path: str, raw_query: dict[str, str], content_type: str, body: Any
    ) -> RequestCheck:
        """Check a request against the operation its path and method select.

        `raw_path` is still percent-encoded; `body` is the parsed JSON (None when empty), or for
        multipart/form-data a dict of part name to bytes.
        """
        if not raw_path.startswith(self.base_path + "/"):
            return RequestCheck(None, {}, {}, [f"{raw_path} is outside {self.base_path}"], 404)
        route_path = raw_path[len(self.base_path) :]
        matches = [
            (op, m.groupdict())
            for op in self.operations
            if (m := self._routes[op.route].fullmatch(route_path))
        ]
        if not matches:
            return RequestCheck(None, {}, {}, [f"{self.service} has no route {raw_path}"], 404)
        # A literal segment beats a parameter: /device/all is not /device/name/{name}.
        allowed = sorted({op.method for op, _ in matches})
        chosen = [(op, p) for op, p in matches if op.method == method]
        if not chosen:
            return RequestCheck(
                None, {}, {}, [f"{method} {raw_path} not allowed by {self.service} (only {allowed})"], 405
            )
        operation, raw_params = min(chosen, key=lambda c: c[0].route.count("{"))
        path_params = {name: unquote(value) for name, value in raw_params.items()}
        errors: list[str] = []
        query: dict[str, Any] = {}
        for param in operation.parameters:
            name, location = param["name"], param["in"]
            if location == "path":
                _, problem = _coerce(path_params[name], param["schema"])
                if problem:
                    errors.append(f"path parameter {name}={path_params[name]!r}: {problem}")
            elif location == "query" and name in raw_query:
                query[name], problem = _coerce(raw_query[name], param["schema"])
                if problem is None:
                    errors += self.schema_errors(query[name], param["schema"], f"query {name}: ")
                else:
                    errors.append(f"query parameter {name}={raw_query[name]!r}: {problem}")
            elif location == "query" and param.get("required"):
                errors.append(f"query parameter {name} is required")
        errors += self.body_errors(operation, content_type, body)
        return RequestCheck(operation, path_params, query, errors, 400)

    def body_errors(self, operation: Operation, content_type: str, body: Any) -> list[str]:
        request_body = operation.spec.get("requestBody")
        if request_body is None:
            return [f"{operation.method} {operation.route} takes no body"] if body is not None else []
        if body is None:
            return ["request body is required"] if request_body.get("required") else []
        media = content_type.split(";")[0].strip() or "application/json"
        content = request_body["content"]
        if media not in content:
            return [f"content type {media!r} not accepted (only {sorted(content)})"]
        if media == "multipart/form-data":
            return []  # the parts are bytes; the stand-in checks what they hold
        return self.schema_errors(body, content[media]["schema"], "body ")

    def response_errors(self, operation: Operation, status: int, body: Any) -> list[str]:
        response = operation.spec["responses"].get(str(status))
        if response is None:
            return [f"status {status} is not a documented answer of {operation.method} {operation.route}"]
        content = response.get("content")
        if content is None:
            return [] if body is None else [f"status {status} of {operation.route} has no body"]
        return self.schema_errors(body, content["application/json"]["schema"], "response ")


def _absolute_refs(node: Any, uri: str) -> None:
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str) and node["$ref"].startswith("#"):
            node["$ref"] = uri + node["$ref"]
        for value in node.values():
            _absolute_refs(value, uri)
    elif isinstance(node, list):
        for value in node:
            _absolute_refs(value, uri)


def _route_pattern(route: str) -> re.Pattern[str]:
    # core-keeper's route is /kvs/key/{key:.*}: a key spans segments.
    parts = re.split(r"\{(\w+)\}", route)
    pattern = "".join(
        re.escape(part) if i % 2 == 0 else f"(?P<{part}>{'.+' if part == 'key' else '[^/]+'})"
        for i, part in enumerate(parts)
    )
    return re.compile(pattern)


def _coerce(raw: str, schema: dict[str, Any]) -> tuple[Any, str | None]:
    """A path or query string as its schema's type (EdgeX parses with strconv), or why it is not."""
    kind = schema.get("type")
    if kind == "integer":
        try:
            return int(raw), None
        except ValueError:
            return raw, "not an integer"
    if kind == "boolean":
        if raw in ("1", "t", "T", "TRUE", "true", "True"):
            return True, None
        if raw in ("0", "f", "F", "FALSE", "false", "False"):
            return False, None
        return raw, "not a boolean"
    if schema.get("format") == "uuid" and not _is_uuid_or_empty(raw):
        return raw, "not a UUID"
    return raw, None


def _apply_errata(service: str, document: dict[str, Any]) -> None:
    """Make the spec say what the running 4.0 services do where the two differ."""
    schemas = document["components"]["schemas"]
    for parameter in document["components"].get("parameters", {}).values():
        # YAML reads `enum: [true, false]` of string parameters (numeric, ds-pushevent) as booleans.
        enum = parameter.get("schema", {}).get("enum")
        if enum and all(isinstance(v, bool) for v in enum):
            parameter["schema"]["enum"] = [str(v).lower() for v in enum]
    if service == "core-keeper":
        # The running core-keeper and EdgeX's clients name the list `response` (see WIRE.md).
        for name, field in (("MultiKVsResponse", "keyValues"), ("MultiKeysResponse", "keys")):
            properties = schemas[name]["properties"]
            properties["response"] = properties.pop(field)
        # UpdateKeysRequest.Value is `any` in go-mod-core-contracts; the spec's own example is a string.
        schemas["KVRequest"]["properties"]["value"] = {}
    if service == "core-data":
        reading = schemas["Reading"]["properties"]
        reading["objectValue"] = {}  # any JSON: ObjectReading.ObjectValue is `any`
        reading["valueType"]["enum"].append("ObjectArray")  # added in 4.0
    if service == "core-metadata":
        # dtos.AutoEvent requires sourceName; `resource` is its 1.x name.
        schemas["AutoEvent"]["required"] = ["interval", "sourceName"]
        # The Go client sends []UpdateDeviceServiceRequest; metadata decodes an array.
        patch = document["paths"]["/deviceservice"]["patch"]["requestBody"]["content"]["application/json"]
        patch["schema"] = {"type": "array", "items": patch["schema"]}
        # An unknown profile is KindEntityDoesNotExist, which metadata answers with 404.
        upload = document["paths"]["/deviceprofile/uploadfile"]["put"]["responses"]
        upload["404"] = document["paths"]["/deviceprofile/name/{name}"]["get"]["responses"]["404"]


@cache
def load_spec(service: str) -> Spec:
    path = SPEC_DIR / f"{service}.yaml"
    if not path.is_file():
        raise FileNotFoundError(f"EdgeX spec {path} not found: shared/ must sit beside the repository")
    document = yaml.safe_load(path.read_text())
    _apply_errata(service, document)
    return Spec(service, document)


def schema_errors(service: str, schema_name: str, instance: Any) -> list[str]:
    """What is wrong with `instance` as component schema `schema_name` of `service`'s spec."""
    return load_spec(service).schema_errors(instance, schema_name)


def request_body_errors(service: str, method: str, route: str, body: Any) -> list[str]:
    """What is wrong with `body` as the JSON request body of `method route`, e.g. POST /deviceprofile."""
    spec = load_spec(service)
    operation = next(op for op in spec.operations if (op.method, op.route) == (method, route))
    return spec.body_errors(operation, "application/json", body)
