"""The REST API on Service.Port: EdgeX's common endpoints (ping, version, config, trigger), the
models with hot reload, Prometheus metrics, and this API's OpenAPI document.

Litestar serves it through uvicorn on a thread of its own. Anything that runs a model goes to the
inference worker (Service.call_in_worker), so interpreters never run on two threads at once.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import queue
import socket
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

import msgspec
import uvicorn
import yaml
from litestar import Litestar, Request, Response, get, post
from litestar.datastructures import State
from litestar.exceptions import HTTPException
from litestar.openapi import OpenAPIConfig, ResponseSpec
from litestar.openapi.spec import OpenAPIMediaType, Operation, Reference, RequestBody, Schema
from litestar.openapi.spec.enums import OpenAPIType
from litestar.params import FromPath
from prometheus_client import generate_latest

from . import SERVICE_KEY, __version__
from .codec import CBOR, encode_envelope
from .config import ConfigError, ServiceInfo, duration, redacted
from .dtos import API_VERSION, Event
from .inference import LOAD_ERRORS, LoadedModel
from .manifest import Feature
from .pipeline import Rejected
from .tflite import TensorSpec, available_backends

if TYPE_CHECKING:
    from .service import Service

log = logging.getLogger(__name__)
T = TypeVar("T")


class Camel(msgspec.Struct, rename="camel", kw_only=True):
    api_version: str = API_VERSION


class PingResponse(Camel, kw_only=True):
    timestamp: str
    service_name: str = SERVICE_KEY


class VersionResponse(Camel, kw_only=True):
    version: str = __version__
    service_name: str = SERVICE_KEY
    # EdgeX app services name this one in snake case (VersionSdkResponse)
    sdk_version: str = msgspec.field(default=__version__, name="sdk_version")


class ConfigResponse(Camel, kw_only=True):
    config: dict[str, Any]
    service_name: str = SERVICE_KEY


class ErrorResponse(Camel, kw_only=True):
    status_code: int
    message: str


class TriggerResponse(Camel, kw_only=True):
    """The result events of a triggered event: core-data's MultiEventsResponse shape."""

    status_code: int = 200
    total_count: int
    events: list[Event]


class Tensor(msgspec.Struct, rename="camel"):
    name: str
    shape: list[int]
    dtype: str
    quantized: bool


class ResultReading(msgspec.Struct, rename="camel"):
    resource_name: str
    value_type: str
    units: str


class BindingInfo(msgspec.Struct, rename="camel"):
    device_name: str
    profile_name: str
    source_name: str
    resources: list[str]


class ModelInfo(msgspec.Struct, rename="camel"):
    name: str
    description: str
    version: str
    backend: str
    file: str
    result_profile: str
    window: int
    stride: int
    features: list[Feature]
    results: list[ResultReading]
    input_tensors: list[Tensor]
    output_tensors: list[Tensor]
    bindings: list[BindingInfo]
    inferences: int
    errors: int


class ModelsResponse(Camel, kw_only=True):
    status_code: int = 200
    backends: list[str]
    models: list[ModelInfo]


class ReloadResponse(Camel, kw_only=True):
    status_code: int = 200
    previous_version: str
    model: ModelInfo


def _errors(described: dict[int, str]) -> dict[int, ResponseSpec]:
    """OpenAPI entries for the error statuses a handler answers, each with an EdgeX error body."""
    # Litestar would otherwise invent random examples, different on every build of the document.
    return {status: ResponseSpec(ErrorResponse, description=text, generate_examples=False)
            for status, text in described.items()}


_BUSY = ("The inference queue is full, or the worker did not get to the request within "
         "Service.RequestTimeout")


def _tensor(spec: TensorSpec) -> Tensor:
    return Tensor(spec.name, list(spec.shape), str(spec.dtype), spec.quantized)


def _model_info(service: Service, loaded: LoadedModel) -> ModelInfo:
    manifest, model = loaded.manifest, loaded.model
    return ModelInfo(
        name=loaded.name,
        description=manifest.description,
        version=model.version,
        backend=model.backend,
        file=model.path.name,
        result_profile=manifest.result_profile,
        window=manifest.inputs.window,
        stride=manifest.inputs.stride,
        features=manifest.inputs.features,
        results=[ResultReading(o.name, o.value_type, o.units) for o in manifest.outputs],
        input_tensors=[_tensor(spec) for spec in model.inputs],
        output_tensors=[_tensor(spec) for spec in model.outputs],
        bindings=[BindingInfo(b.binding.device_name, b.binding.profile_name, b.binding.source_name,
                              b.resources)
                  for b in service.models.bound if b.loaded is loaded],
        inferences=loaded.inferences,
        errors=loaded.errors,
    )


async def _in_worker(state: State, work: Callable[[], T]) -> T:
    """Run `work` on the inference worker; 503 when the queue is full or stays busy too long."""
    service: Service = state.service
    timeout: float = state.request_timeout
    try:
        future = service.call_in_worker(work)
    except queue.Full:
        raise HTTPException(status_code=503, detail="the inference queue is full "
                            f"(Inference.QueueSize {service.queue.maxsize}); retry later") from None
    try:
        return await asyncio.wait_for(asyncio.wrap_future(future), timeout)
    except TimeoutError:
        raise HTTPException(status_code=503, detail=f"the inference worker did not get to this "
                            f"request within Service.RequestTimeout ({timeout:g}s); "
                            f"{service.queue.qsize()} messages are queued") from None


@get("/api/v3/ping", summary="Ping", description="Liveness check (the registry's health check).")
async def ping() -> PingResponse:
    return PingResponse(timestamp=email.utils.formatdate(usegmt=True))


@get("/api/v3/version", summary="Version")
async def version() -> VersionResponse:
    return VersionResponse()


@get("/api/v3/config", summary="Configuration", description="The running configuration, "
     "with secret values replaced by ***.")
async def config(state: State) -> ConfigResponse:
    return ConfigResponse(config=redacted(state.service.config))


_STRING = Schema(type=OpenAPIType.STRING)
_EVENT = Reference("#/components/schemas/Event")
_TRIGGER_BODY = RequestBody(required=True, content={
    "application/json": OpenAPIMediaType(schema=Schema(one_of=[
        Schema(type=OpenAPIType.OBJECT, description="AddEventRequest", required=["event"],
               properties={"apiVersion": _STRING, "requestId": _STRING, "event": _EVENT}),
        _EVENT,
        Schema(type=OpenAPIType.OBJECT, required=["payload"],
               description="MessageEnvelope as on the MessageBus (object, base64 JSON or base64 "
                           "CBOR payload)",
               properties={"apiVersion": _STRING, "correlationID": _STRING, "payload": Schema(),
                           "contentType": _STRING}),
    ])),
    CBOR: OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING, format="binary",
                                         description="CBOR-encoded AddEventRequest")),
})


@dataclass
class TriggerOperation(Operation):
    """The trigger reads its body itself (three JSON forms and CBOR), so it is described here."""

    def __post_init__(self) -> None:
        self.request_body = _TRIGGER_BODY


def as_envelope(body: bytes, content_type: str) -> bytes:
    """The posted body as the MessageBus carries it, so the pipeline takes it unchanged."""
    if content_type == CBOR:
        return encode_envelope(body, content_type=CBOR)
    try:
        data = msgspec.json.decode(body)
    except msgspec.DecodeError as exc:
        raise HTTPException(status_code=400, detail=f"body is not JSON: {exc}") from None
    if isinstance(data, dict):
        if "payload" in data:
            return body
        if "event" in data:
            return encode_envelope(body)
        if "readings" in data:
            return encode_envelope(msgspec.json.encode(
                {"apiVersion": API_VERSION, "requestId": "", "event": data}))
    raise HTTPException(status_code=400, detail="body must be an AddEventRequest, an Event or a "
                        "MessageEnvelope (a JSON object with event, readings or payload)")


@post("/api/v3/trigger", status_code=200, operation_class=TriggerOperation, summary="Trigger",
      responses=_errors({400: "Not an event, or the pipeline rejected it (the message says why)",
                         413: "Body over Service.MaxRequestSize", 500: "Processing failed",
                         503: _BUSY}),
      description="Runs the pipeline on a posted event, as if it came from the MessageBus: the "
      "results are published as usual and returned here. A window model answers only once its "
      "window is full, so `events` may be empty.")
async def trigger(request: Request, state: State) -> TriggerResponse:
    service: Service = state.service
    service.metrics.received.inc()
    try:
        payload = as_envelope(await request.body(), request.content_type[0])
    except HTTPException as exc:
        if exc.status_code != 413:
            service.metrics.invalid.labels("malformed").inc()
            raise
        service.metrics.invalid.labels("oversized").inc()
        limit = request.route_handler.resolve_request_max_body_size()
        raise HTTPException(status_code=413, detail=f"the body is over the limit of {limit} bytes "
                            "(Service.MaxRequestSize, in KB)") from None
    try:
        events = await _in_worker(state, lambda: service.process("REST trigger", payload))
    except Rejected as exc:
        raise HTTPException(status_code=400, detail=str(exc)) from None
    except HTTPException:
        raise
    except Exception as exc:  # already logged and counted by Service.process
        raise HTTPException(status_code=500, detail=f"processing the event failed: {exc}") from None
    return TriggerResponse(total_count=len(events), events=events)


@get("/api/v3/models", summary="Models", description="Loaded models with their versions (a hash "
     "of the .tflite file), tensors, bindings and counters.")
async def models(state: State) -> ModelsResponse:
    service: Service = state.service
    return ModelsResponse(backends=list(available_backends()),
                          models=[_model_info(service, m) for m in service.models.models.values()])


@post("/api/v3/models/{name:str}/reload", status_code=200, summary="Reload a model",
      responses=_errors({400: "Invalid model name", 404: "No such model is loaded",
                         422: "The new files do not load; the old model keeps serving",
                         503: _BUSY}),
      description="Loads the model's .tflite and manifest again and swaps them in between two "
      "messages. If the new files do not load, the old model keeps serving (422).")
async def reload(name: FromPath[str], state: State) -> ReloadResponse:
    service: Service = state.service
    loaded = service.models.models.get(name)
    if loaded is None:
        raise HTTPException(status_code=404, detail=f"no model {name!r} is loaded; loaded: "
                            + ", ".join(service.models.models))
    previous = loaded.model.version
    try:
        await _in_worker(state, lambda: service.models.reload(name))
    except LOAD_ERRORS as exc:
        log.warning("reloading model %s failed, version %s keeps serving: %s", name, previous, exc)
        raise HTTPException(status_code=422, detail=f"model {name} not reloaded, version "
                            f"{previous} keeps serving: {exc}") from None
    log.info("model %s reloaded: version %s -> %s", name, previous, loaded.model.version)
    return ReloadResponse(previous_version=previous, model=_model_info(service, loaded))


# The classic text format every Prometheus server reads; Litestar adds the charset.
@get("/metrics", media_type="text/plain; version=0.0.4", summary="Prometheus metrics")
async def metrics(state: State) -> bytes:
    return generate_latest(state.service.metrics.registry)


@get("/api/v3/openapi.yaml", media_type="application/vnd.oai.openapi", include_in_schema=False)
async def openapi(request: Request) -> str:
    return _document(request.app)


def _error(request: Request, exc: Exception) -> Response[ErrorResponse]:
    """Every error as an EdgeX error body."""
    if isinstance(exc, HTTPException):
        status, message = exc.status_code, exc.detail
    else:
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        status, message = 500, f"internal error: {exc}"
    return Response(ErrorResponse(status_code=status, message=message), status_code=status)


def create_app(service: Service | None) -> Litestar:
    """The API of `service` (None only to generate the OpenAPI document)."""
    settings = service.config.service if service else ServiceInfo()
    timeout = duration(settings.request_timeout, key="Service.RequestTimeout")
    max_kb = settings.max_request_size
    return Litestar(
        route_handlers=[ping, version, config, trigger, models, reload, metrics, openapi],
        state=State({"service": service, "request_timeout": timeout}),
        exception_handlers={Exception: _error},
        openapi_config=OpenAPIConfig(
            title=SERVICE_KEY, version=__version__,
            description="EdgeX application service running TensorFlow Lite models on events.",
            path=None,  # no /schema routes: openapi() serves the document under /api/v3
        ),
        # EdgeX's Service.MaxRequestSize is in KB; 0 leaves Litestar's default limit
        **({"request_max_body_size": max_kb * 1024} if max_kb else {}),
        logging_config=None,
    )


def _document(app: Litestar) -> str:
    return yaml.safe_dump(msgspec.to_builtins(app.openapi_schema.to_schema()), sort_keys=False)


def openapi_document() -> str:
    """The OpenAPI document as served at /api/v3/openapi.yaml (`make openapi` commits it)."""
    return _document(create_app(None))


class RestServer:
    """uvicorn on its own thread; start() returns once Service.Port accepts connections."""

    def __init__(self, service: Service) -> None:
        self.settings = service.config.service
        # The app is built here rather than in start() so that a bad setting fails Service().
        self._server = uvicorn.Server(uvicorn.Config(
            create_app(service), log_config=None, log_level="warning", access_log=False,
            timeout_graceful_shutdown=5))
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        info = self.settings
        host = info.server_bind_addr or info.host
        try:
            sock = socket.create_server(
                (host, info.port), family=socket.AF_INET6 if ":" in host else socket.AF_INET)
        except OSError as exc:
            raise ConfigError(f"Service.Port: cannot listen on {host}:{info.port}: "
                              f"{exc.strerror or exc}") from None
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]},
                                        name="rest", daemon=True)
        self._thread.start()
        while not self._server.started:
            if not self._thread.is_alive():
                raise ConfigError(f"Service.Port: the REST server on {host}:{info.port} "
                                  "did not start (see the log above)")
            time.sleep(0.01)
        log.info("REST API on http://%s:%d/api/v3", host, info.port)

    def stop(self) -> None:
        if self._thread:
            self._server.should_exit = True
            self._thread.join(timeout=10)


if __name__ == "__main__":
    sys.stdout.write(openapi_document())
