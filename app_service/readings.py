"""Reading values as numbers: EdgeX's string encodings in, model-ready floats out, and back."""

from __future__ import annotations

import math

import numpy as np

from .dtos import Reading

NUMERIC_TYPES = frozenset(
    {"Uint8", "Uint16", "Uint32", "Uint64", "Int8", "Int16", "Int32", "Int64", "Float32", "Float64"}
)
ARRAY_TYPES = frozenset(t + "Array" for t in NUMERIC_TYPES) | {"BoolArray"}


class ReadingError(ValueError):
    """A reading whose value a model cannot take; the text names the resource."""


def _number(text: str, value_type: str, resource: str) -> float:
    # Go's ParseFloat takes NaN/Inf spellings like Python's float() does, but not "_" or spaces.
    if "_" in text or text != text.strip():
        raise ReadingError(f"resource {resource!r}: unparsable {value_type} value {text!r}")
    try:
        value = float(text) if value_type.startswith("Float") else float(int(text))
    except ValueError:
        raise ReadingError(f"resource {resource!r}: unparsable {value_type} value {text!r}") from None
    if not math.isfinite(value):
        raise ReadingError(f"resource {resource!r}: {text} is not a finite number")
    return value


def _bool(text: str, resource: str) -> float:
    if text in ("true", "false"):
        return 1.0 if text == "true" else 0.0
    raise ReadingError(f"resource {resource!r}: unparsable Bool value {text!r}")


def parse_value(reading: Reading) -> float | np.ndarray:
    """The reading's value as a float (scalars) or a float32 vector (arrays, Binary, Object)."""
    value_type, resource = reading.value_type, reading.resource_name
    if value_type in NUMERIC_TYPES:
        return _number(reading.value, value_type, resource)
    if value_type == "Bool":
        return _bool(reading.value, resource)
    if value_type in ARRAY_TYPES:
        return _array(reading.value, value_type, resource)
    if value_type == "Binary":
        if not reading.binary_value:
            raise ReadingError(f"resource {resource!r}: Binary reading without binaryValue")
        return np.frombuffer(reading.binary_value, dtype=np.uint8).astype(np.float32)
    if value_type in ("Object", "ObjectArray"):
        return _object(reading.object_value, resource)
    raise ReadingError(f"resource {resource!r}: a {value_type} reading cannot be a model input")


def _array(text: str, value_type: str, resource: str) -> np.ndarray:
    body = text.strip()
    if not (body.startswith("[") and body.endswith("]")):
        raise ReadingError(f"resource {resource!r}: {value_type} value {text[:40]!r} is not [a, b, ...]")
    items = [item.strip() for item in body[1:-1].split(",")] if body[1:-1].strip() else []
    element = value_type[: -len("Array")]
    if element == "Bool":
        return np.array([_bool(item, resource) for item in items], dtype=np.float32)
    return np.array([_number(item, element, resource) for item in items], dtype=np.float32)


def _object(value: object, resource: str) -> np.ndarray:
    try:
        array = np.asarray(value, dtype=np.float32)
    except (TypeError, ValueError):
        raise ReadingError(f"resource {resource!r}: Object value is not a list of numbers") from None
    if array.ndim == 0 or not np.isfinite(array).all():
        raise ReadingError(f"resource {resource!r}: Object value is not a list of finite numbers")
    return array.ravel()


def format_float(value: float) -> str:
    """EdgeX's float formatting (`%e`, as 3.x and 4.0.0 write and every version parses)."""
    return f"{value:e}"


def format_array(values: np.ndarray) -> str:
    return "[" + ", ".join(f"{float(v):e}" for v in values) + "]"
