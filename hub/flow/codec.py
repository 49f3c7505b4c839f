"""What the flow needs of serialisation, and the two ways it can fail: the
record's fault (a dead letter) or the registry's (retried). ``hub.kafka.serde``
implements it with cavro and the schema registry."""
from __future__ import annotations

from typing import Any, Protocol
from collections.abc import Callable, Mapping

# A contract's writer: a record (a dict, or a TypedDict such as an Event) to its wire bytes.
Encode = Callable[[Mapping[str, Any]], bytes]


class DecodeError(ValueError):
    """The bytes are not a record of the contract: the record's own fault, a dead letter."""

    def __init__(self, message: str, reason_code: str | None = None) -> None:
        super().__init__(message)
        self.reason_code = reason_code


class EncodeError(ValueError):
    """A record the hub built does not fit its schema: a bug, never the
    broker's fault. The message names the field, never its value (which may
    be personal data: the codec's own message quotes it)."""


class RegistryUnavailable(RuntimeError):
    """The schema registry did not answer: the infrastructure's fault, never
    the record's. Retried; the record is not acknowledged meanwhile."""


class Codec(Protocol):
    def decoder(self, contract: str) -> Callable[[bytes | None], dict[str, Any]]: ...

    def encoder(self, topic: str, contract: str) -> Encode: ...
