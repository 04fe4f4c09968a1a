"""HTTP calls to EdgeX services: errors that name the service and call, and patient retries."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

import requests

from .config import Client
from .dtos import API_VERSION, new_id

log = logging.getLogger(__name__)

TIMEOUT = 5.0


class EdgeXError(Exception):
    """An EdgeX service was unreachable or refused a call; the text names both."""


def base_request(**fields: Any) -> dict[str, Any]:
    """An EdgeX request DTO: apiVersion and a fresh requestId around `fields`."""
    return {"apiVersion": API_VERSION, "requestId": new_id(), **fields}


def call(session: requests.Session, method: str, url: str, *, ok: tuple[int, ...] = (200,),
         timeout: float = TIMEOUT, **kwargs: Any) -> requests.Response:
    """One request; raises EdgeXError unless the answer's status is in `ok`."""
    try:
        response = session.request(method, url, timeout=timeout, **kwargs)
    except requests.RequestException as exc:
        raise EdgeXError(f"{method} {url}: {exc}") from None
    if response.status_code not in ok:
        raise EdgeXError(f"{method} {url} answered {response.status_code}: {message(response)}")
    return response


def json_of(response: requests.Response) -> Any:
    """The JSON body of an answer; EdgeXError naming the call when it is not JSON (something
    other than an EdgeX service answers at that address)."""
    try:
        return response.json()
    except ValueError:
        raise EdgeXError(f"{response.request.method} {response.url} answered "
                         f"{response.status_code} with no JSON: {response.text[:200]!r}") from None


def message(response: requests.Response) -> str:
    """The `message` of an EdgeX error answer, else the start of the body."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and body.get("message"):
        return str(body["message"])
    return response.text[:200]


def multi_status(response: requests.Response, what: str) -> None:
    """core-metadata answers an array with 207 and one status per element: raise on any failure."""
    failures = [item.get("message", "") for item in json_of(response)
                if not 200 <= int(item.get("statusCode", 500)) < 300]
    if failures:
        raise EdgeXError(f"core-metadata refused {what}: {'; '.join(failures)}")


def url_of(client: Client, path: str) -> str:
    return f"{client.url}/api/v3/{path.lstrip('/')}"


def keep_trying(what: str, attempt: Callable[[], None], stop: threading.Event, *,
                first: float = 1.0, longest: float = 60.0) -> bool:
    """Run `attempt` until it succeeds or `stop` is set, backing off between tries.

    Start-up chores with EdgeX services (registering, uploading profiles) must not hold the
    service back when those services are late or down; they just keep trying.
    Returns whether `attempt` succeeded.
    """
    delay = first
    while not stop.is_set():
        try:
            attempt()
            return True
        except EdgeXError as exc:
            log.warning("%s failed, retrying in %.0fs: %s", what, delay, exc)
        stop.wait(delay)
        delay = min(delay * 2, longest)
    return False
