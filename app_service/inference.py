"""Models bound to events: routing, per-device windows, invoking the model, result events."""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from fnmatch import fnmatchcase
from pathlib import Path

import numpy as np

from . import SERVICE_KEY
from .config import Binding, ConfigError, Inference
from .dtos import Event, Reading, new_id
from .manifest import Manifest, ManifestError, Output, load_manifest
from .readings import ReadingError, format_array, format_float, parse_value
from .tflite import ModelLoadError, RuntimeUnavailable, TFLiteModel


class InputError(ValueError):
    """An event that a binding selected but whose readings cannot feed the model."""


class BindingError(Exception):
    """A model that does not fit its manifest, or a binding that does not fit its model."""


# What loading the configured models can fail with: each means "fix the configuration or the
# model files", and each message names the key or file.
LOAD_ERRORS = (ConfigError, ManifestError, ModelLoadError, RuntimeUnavailable, BindingError)


@dataclass
class LoadedModel:
    """A manifest and its interpreter; `model` is swapped whole on reload."""

    manifest: Manifest
    model: TFLiteModel
    inferences: int = 0
    errors: int = 0

    @property
    def name(self) -> str:
        return self.manifest.name


def load_model(models_dir: Path, name: str, *, runtime: str = "auto",
               num_threads: int = 1) -> LoadedModel:
    manifest = load_manifest(models_dir / f"{name}.yaml")
    model = TFLiteModel(models_dir / f"{name}.tflite", runtime=runtime, num_threads=num_threads)
    _check_fits(manifest, model)
    return LoadedModel(manifest, model)


def _check_fits(manifest: Manifest, model: TFLiteModel) -> None:
    if len(model.inputs) != 1:
        raise BindingError(f"model {manifest.name}: takes {len(model.inputs)} input tensors; "
                         "manifests describe models with one")
    for output in manifest.outputs:
        if output.tensor >= len(model.outputs):
            raise BindingError(f"model {manifest.name}: output {output.name!r} reads tensor "
                             f"{output.tensor}, the model has {len(model.outputs)}")
        size = model.outputs[output.tensor].size
        if output.index is not None and output.index >= size:
            raise BindingError(f"model {manifest.name}: output {output.name!r} reads element "
                             f"{output.index} of a tensor of {size}")


@dataclass
class BoundModel:
    binding: Binding
    loaded: LoadedModel
    resources: list[str]
    windows: dict[str, deque[np.ndarray]] = field(default_factory=dict)
    pending: dict[str, int] = field(default_factory=dict)

    def check(self, manifest: Manifest) -> None:
        features = len(manifest.inputs.features)
        if self.binding.resources and len(self.binding.resources) != features:
            raise BindingError(f"binding of model {manifest.name}: Resources lists "
                             f"{len(self.binding.resources)} names, the model takes {features} features")

    def selects(self, device: str, profile: str, source: str) -> bool:
        b = self.binding
        return (fnmatchcase(device, b.device_name) and fnmatchcase(profile, b.profile_name)
                and fnmatchcase(source, b.source_name))

    def row(self, event: Event, by_resource: dict[str, Reading]) -> np.ndarray | None:
        """This event's normalised feature row, or None when it lacks the model's resources."""
        try:
            readings = [by_resource[resource] for resource in self.resources]
        except KeyError:
            return None
        features = self.loaded.manifest.inputs.features
        try:
            values = [parse_value(reading) for reading in readings]
        except ReadingError as exc:
            raise InputError(f"device {event.device_name!r}, model {self.loaded.name}: {exc}") from None
        # Plain floats for the usual scalar readings: numpy costs more than it saves on a few values.
        if all(type(value) is float for value in values):
            return np.array([(v - f.mean) / f.std for v, f in zip(values, features, strict=True)],
                            dtype=np.float32)
        return np.concatenate([(np.atleast_1d(np.asarray(v, dtype=np.float32)) - f.mean) / f.std
                               for v, f in zip(values, features, strict=True)])

    def push(self, device: str, row: np.ndarray) -> np.ndarray | None:
        """Add a row to the device's window; the model input when the window and stride are due."""
        inputs = self.loaded.manifest.inputs
        if inputs.window == 1:
            return row
        window = self.windows.get(device)
        if window is None:
            window = self.windows[device] = deque(maxlen=inputs.window)
        window.append(row)
        self.pending[device] = pending = self.pending.get(device, 0) + 1
        if len(window) < inputs.window or pending < inputs.stride:
            return None
        self.pending[device] = 0
        return np.concatenate(window)

    def infer(self, event: Event, x: np.ndarray) -> Event:
        loaded = self.loaded
        model, manifest = loaded.model, loaded.manifest
        started = time.perf_counter_ns()
        try:
            outputs = model.run(x)
        except ValueError as exc:
            loaded.errors += 1
            raise InputError(f"device {event.device_name!r}, model {manifest.name}: {exc}") from None
        latency_us = (time.perf_counter_ns() - started) // 1000
        loaded.inferences += 1
        origin = time.time_ns()
        readings = [_reading(output, outputs, event.device_name, manifest.result_profile, origin)
                    for output in manifest.outputs]
        return Event(
            id=new_id(),
            device_name=event.device_name,
            profile_name=manifest.result_profile,
            source_name=manifest.name,
            origin=origin,
            readings=readings,
            tags={
                "generatedBy": SERVICE_KEY,
                "model": manifest.name,
                "modelVersion": model.version,
                "sourceEventId": event.id,
                "inferenceLatencyUs": latency_us,
            },
        )


def _reading(output: Output, tensors: list[np.ndarray], device: str, profile: str,
             origin: int) -> Reading:
    flat = tensors[output.tensor].ravel()
    if output.labels is not None:
        index = int(np.argmax(flat * output.scale + output.offset))
        value = output.labels[index] if index < len(output.labels) else str(index)
    elif output.index is None:
        value = format_array(flat * output.scale + output.offset)
    else:
        number = float(flat[output.index]) * output.scale + output.offset
        if output.threshold is not None:
            value = "true" if number > output.threshold else "false"
        else:
            value = format_float(number)
    return Reading(
        id=new_id(),
        origin=origin,
        device_name=device,
        resource_name=output.name,
        profile_name=profile,
        value_type=output.value_type,
        value=value,
        units=output.units,
    )


class ModelSet:
    """Every configured binding, with the models they use loaded once each."""

    def __init__(self, settings: Inference, base_dir: Path = Path()) -> None:
        self.models_dir = base_dir / settings.models_dir
        self.settings = settings
        self.models: dict[str, LoadedModel] = {}
        self.bound: list[BoundModel] = []
        for binding in settings.bindings:
            loaded = self.models.get(binding.model) or self._load(binding.model)
            self.models[binding.model] = loaded
            bound = BoundModel(binding, loaded, binding.resources or loaded.manifest.resources)
            bound.check(loaded.manifest)
            self.bound.append(bound)
        self._routes: dict[tuple[str, str, str], list[BoundModel]] = {}

    def _load(self, name: str) -> LoadedModel:
        return load_model(self.models_dir, name, runtime=self.settings.runtime,
                          num_threads=self.settings.num_threads)

    def reload(self, name: str) -> LoadedModel:
        """Load the model's files again and swap them in; on failure the old model stays."""
        if name not in self.models:
            raise KeyError(name)
        fresh = self._load(name)
        for bound in self.bound:
            if bound.binding.model == name:
                bound.check(fresh.manifest)
        loaded = self.models[name]
        loaded.manifest, loaded.model = fresh.manifest, fresh.model
        for bound in self.bound:
            if bound.binding.model == name:
                # a new window length or feature list makes the old windows meaningless
                bound.windows.clear()
                bound.pending.clear()
                bound.resources = bound.binding.resources or fresh.manifest.resources
        return loaded

    def route(self, event: Event) -> list[BoundModel]:
        key = (event.device_name, event.profile_name, event.source_name)
        bound = self._routes.get(key)
        if bound is None:
            if len(self._routes) > 100_000:
                self._routes.clear()
            bound = self._routes[key] = [b for b in self.bound if b.selects(*key)]
        return bound

    def infer(self, event: Event) -> Iterator[Event]:
        """Result events for every binding this event completes (none for most window steps)."""
        bound = self.route(event)
        if not bound:
            return
        by_resource = {reading.resource_name: reading for reading in event.readings}
        for binding in bound:
            row = binding.row(event, by_resource)
            if row is None:
                continue
            x = binding.push(event.device_name, row)
            if x is not None:
                yield binding.infer(event, x)
