"""The tool's own gRPC calls between a chief and its workers, as JSON messages: each checked before it is used, a
bad one answered with a gRPC status and one line in the chief's log, never a traceback.

The services (cnn_tuner.ConfirmRuns in confirm_service.py, cnn_tuner.Workers in joining.py) are generic gRPC services, so no protocol file is
needed; their messages are JSON objects, and anything can reach the chief's port (it has no authentication), so
every field is checked here as data from outside.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Callable

import grpc

log = logging.getLogger(__name__)

# What a call's handler is given and returns: the request's JSON object, and the answer's.
Call = Callable[[dict[str, Any]], dict[str, Any]]


class Refused(Exception):
    """A call the chief will not carry out: answered with `code` and the message, and logged as one line (`line`,
    or a warning naming the call)."""

    def __init__(self, code: grpc.StatusCode, message: str, line: str | None = None) -> None:
        super().__init__(message)
        self.code, self.line = code, line


def invalid(message: str) -> Refused:
    """A malformed message: not what the call takes."""
    return Refused(grpc.StatusCode.INVALID_ARGUMENT, message)


def precondition(message: str, line: str | None = None) -> Refused:
    """A well-formed message the chief's state refuses: an unknown worker or job, a run not saved, another search."""
    return Refused(grpc.StatusCode.FAILED_PRECONDITION, message, line)


def fields(request: Any, expected: dict[str, type]) -> dict[str, Any]:
    """`request` if it is a JSON object with at least the `expected` fields of their types (raises Refused).

    JSON's true and false are Python ints too: a field that takes a number refuses them.
    """
    if not isinstance(request, dict):
        raise invalid(f"expected a JSON object, got {type(request).__name__}")
    for name, kind in expected.items():
        if name not in request:
            raise invalid(f"missing field {name!r}")
        value = request[name]
        if not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool):
            raise invalid(f"field {name!r} must be {kind.__name__}, got {type(value).__name__}")
    return request


def worker_of(request: Any) -> str:
    """The non-empty worker id a request names (raises Refused)."""
    worker = fields(request, {"worker": str})["worker"]
    if not worker:
        raise invalid("field 'worker' is empty")
    return worker


def job_of(value: Any, name: str = "job") -> dict[str, Any]:
    """A confirm run as the chief hands it out: {"trial": id, "index": 1, 2, ..., "hyperparameters": {...}}."""
    if not isinstance(value, dict):
        raise invalid(f"field {name!r} must be an object, got {type(value).__name__}")
    fields(value, {"trial": str, "index": int, "hyperparameters": dict})
    if value["index"] < 1:
        raise invalid(f"field {name!r} has index {value['index']}, expected 1 or more")
    return value


def _decode(data: bytes) -> Any:
    # gRPC logs a traceback when a deserializer raises, so the bytes are decoded here, where a failure is a status.
    try:
        return json.loads(data)
    except (ValueError, RecursionError):  # UnicodeDecodeError is a ValueError; RecursionError: nested too deep
        raise invalid("the message is not JSON") from None


def _encode(message: dict[str, Any]) -> bytes:
    return json.dumps(message).encode()


def _handler(service: str, name: str, call: Call) -> grpc.RpcMethodHandler:
    def handle(request: bytes, context: grpc.ServicerContext) -> dict[str, Any]:
        try:
            return call(_decode(request))
        except Refused as refused:
            if refused.line is not None:
                log.error("%s", refused.line)
            else:
                log.warning("%s/%s from %s refused: %s", service, name, context.peer(), refused)
            context.abort(refused.code, str(refused))
        except Exception as error:  # noqa: BLE001 - one line, not a traceback on the chief's terminal
            log.error("error: %s/%s from %s failed: %s: %s", service, name, context.peer(), type(error).__name__, error)
            log.debug("the failed call's traceback", exc_info=True)
            context.abort(grpc.StatusCode.INTERNAL, f"the chief failed on this call: {type(error).__name__}")
        raise AssertionError("context.abort returns only by raising")  # for the type checker

    return grpc.unary_unary_rpc_method_handler(handle, response_serializer=_encode)


def serve(server: grpc.Server, service: str, calls: dict[str, Call]) -> None:
    """Serve `calls` (method name -> handler of the checked JSON request) as `service` on `server` (before it starts).

    A handler raises Refused for a call it will not carry out; the caller gets its status and message.
    """
    handlers = {name: _handler(service, name, call) for name, call in calls.items()}
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler(service, handlers),))


class Client:
    """The calls of a JSON `service` on `channel`, one attribute per method: client.Next({...}, timeout=...)."""

    def __init__(self, channel: grpc.Channel, service: str, methods: tuple[str, ...]) -> None:
        for name in methods:
            setattr(self, name, channel.unary_unary(f"/{service}/{name}", request_serializer=_encode,
                                                    response_deserializer=json.loads))
