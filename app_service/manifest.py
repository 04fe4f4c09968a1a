"""Model manifests: models/NAME.yaml beside models/NAME.tflite says what the model takes and gives."""

from __future__ import annotations

from pathlib import Path

import msgspec
import numpy as np
import yaml


class ManifestError(Exception):
    """A manifest that cannot be used; the text names the file and key."""


class Camel(msgspec.Struct, rename="camel", forbid_unknown_fields=True):
    pass


class Feature(Camel):
    resource: str
    mean: float = 0.0
    std: float = 1.0


class Inputs(Camel):
    features: list[Feature]
    window: int = 1
    stride: int = 1


class Output(Camel):
    name: str
    tensor: int = 0
    index: int | None = None
    scale: float = 1.0
    offset: float = 0.0
    units: str = ""
    threshold: float | None = None
    labels: list[str] | None = None

    @property
    def value_type(self) -> str:
        if self.threshold is not None:
            return "Bool"
        if self.labels is not None:
            return "String"
        return "Float32" if self.index is not None else "Float32Array"


class Manifest(Camel):
    name: str
    result_profile: str
    inputs: Inputs
    outputs: list[Output]
    description: str = ""

    @property
    def resources(self) -> list[str]:
        return [feature.resource for feature in self.inputs.features]

    @property
    def mean(self) -> np.ndarray:
        return np.array([f.mean for f in self.inputs.features], dtype=np.float32)

    @property
    def std(self) -> np.ndarray:
        return np.array([f.std for f in self.inputs.features], dtype=np.float32)


def load_manifest(path: Path) -> Manifest:
    try:
        data = yaml.safe_load(path.read_text())
    except OSError as exc:
        raise ManifestError(f"cannot read model manifest {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ManifestError(f"model manifest {path} is not valid YAML: {exc}") from None
    try:
        manifest = msgspec.convert(data, Manifest)
    except msgspec.ValidationError as exc:
        raise ManifestError(f"model manifest {path}: {exc}") from None
    _check(manifest, path)
    return manifest


def _check(manifest: Manifest, path: Path) -> None:
    inputs = manifest.inputs
    problems = []
    if manifest.name != path.stem:
        problems.append(f"name {manifest.name!r} differs from the file name {path.stem!r}")
    if not inputs.features:
        problems.append("inputs.features is empty")
    if inputs.window < 1 or inputs.stride < 1:
        problems.append("inputs.window and inputs.stride must be at least 1")
    problems += [f"inputs.features[{i}].std is 0" for i, f in enumerate(inputs.features)
                 if f.std == 0]
    if not manifest.outputs:
        problems.append("outputs is empty")
    names = [output.name for output in manifest.outputs]
    if len(set(names)) != len(names):
        problems.append("output names repeat")
    problems += [f"output {o.name!r} sets both threshold and labels" for o in manifest.outputs
                 if o.threshold is not None and o.labels is not None]
    if problems:
        raise ManifestError(f"model manifest {path}: " + "; ".join(problems))
