"""Signed records: who sent a Kafka record, proven (签名).

A signature travels in one record header, ``hub-sig`` (97 bytes): a version
byte, the signer's key ID (8 bytes), when it was signed (milliseconds since
the epoch, 8 bytes), a random nonce (16 bytes) and the Ed25519 signature
(64 bytes) over the topic, the key, the SHA-256 of the value (whose first
five bytes are the schema ID in Confluent's wire format), the key ID, the
time and the nonce. Moving a record to another topic or key, changing one
byte of its value, swapping its schema ID or stripping its headers breaks it.

Replays: a record's broker timestamp (``LogAppendTime`` on the hub's topics
in production) more than ``max_delay_s`` after its signature is a copy of an
old record, refused. A copy made within that delay is the same record
twice, which the workers already treat as such: an event ID seen before is
a duplicate, a team's answer already in a lead's history changes nothing,
and an answer older than the team's last on that lead is refused.
"""
from __future__ import annotations

import hashlib
import os
import struct
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from hub.trust.keys import SigningKey, TrustedKey, TrustError, TrustStore

HEADER = "hub-sig"
_VERSION = 1
_LAYOUT = struct.Struct(">B8sq16s64s")  # version, key ID, signed at (ms), nonce, signature
_DOMAIN = b"supervision-hub record signature v1\x00"

Headers = Sequence[tuple[str, bytes | None]]


class Untrusted(Exception):
    """A record whose sender is not proven: refused with this reason code."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code


def _signed_bytes(topic: str, key: bytes | None, value: bytes, key_id: bytes, at_ms: int, nonce: bytes) -> bytes:
    topic_bytes = topic.encode()
    keyed = b"\x00" if key is None else b"\x01" + struct.pack(">I", len(key)) + key
    return b"".join((_DOMAIN, struct.pack(">H", len(topic_bytes)), topic_bytes, keyed,
                     hashlib.sha256(value).digest(), key_id, struct.pack(">q", at_ms), nonce))


class Signer:
    """Signs what one identity publishes."""

    def __init__(self, key: SigningKey, clock: Callable[[], float] = time.time) -> None:
        self.key = key
        self._id = bytes.fromhex(key.key_id)
        self.clock = clock

    @property
    def name(self) -> str:
        return self.key.trusted.name

    def header(self, topic: str, key: bytes | None, value: bytes) -> tuple[str, bytes]:
        at_ms = int(self.clock() * 1000)
        nonce = os.urandom(16)
        signature = self.key.private.sign(_signed_bytes(topic, key, value, self._id, at_ms, nonce))
        return HEADER, _LAYOUT.pack(_VERSION, self._id, at_ms, nonce, signature)

    def headers(self, topic: str, key: bytes | None, value: bytes) -> list[tuple[str, str | bytes | None]]:
        """As Kafka clients take them."""
        return [self.header(topic, key, value)]


@dataclass(frozen=True)
class Verified:
    signer: TrustedKey
    signed_at_ms: int


class TrustStoreFile:
    """The trust store as a file on disk, read again when it changes (a
    revocation takes effect without a restart), at most once a second."""

    def __init__(self, path: Path, clock: Callable[[], float] = time.monotonic, interval_s: float = 1.0) -> None:
        self.path, self.clock, self.interval_s = path, clock, interval_s
        self._stamp: tuple[int, int] | None = None
        self._checked = float("-inf")
        self.store = TrustStore({})
        self.refresh(force=True)

    def refresh(self, force: bool = False) -> TrustStore:
        now = self.clock()
        if not force and now - self._checked < self.interval_s:
            return self.store
        self._checked = now
        try:
            stat = self.path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
        except FileNotFoundError:
            stamp = (0, 0)
        if stamp != self._stamp:
            self.store = TrustStore.load(self.path)
            self._stamp = stamp
        return self.store


class Verifier:
    """Checks a record's signature against the trust store."""

    def __init__(self, trust: TrustStoreFile, max_delay_s: float = 300.0, max_skew_s: float = 300.0) -> None:
        self.trust = trust
        self.max_delay_ms = int(max_delay_s * 1000)
        self.max_skew_ms = int(max_skew_s * 1000)
        self._public: dict[str, Ed25519PublicKey] = {}

    def verify(self, topic: str, key: bytes | None, value: bytes, headers: Headers | None,
               timestamp_ms: int | None) -> Verified:
        """``timestamp_ms``: the record's broker timestamp, when known."""
        found = [v for h, v in headers or () if h == HEADER]
        if not found:
            raise Untrusted("unsigned", "no signature header: the sender is not proven")
        raw = found[-1]
        if len(found) > 1 or raw is None or len(raw) != _LAYOUT.size:
            raise Untrusted("malformed_signature", "a signature header of the wrong size, or more than one")
        version, kid, at_ms, nonce, signature = _LAYOUT.unpack(raw)
        if version != _VERSION:
            raise Untrusted("malformed_signature", f"signature version {version}")
        store = self.trust.refresh()
        trusted = store.keys.get(kid.hex())
        if trusted is None:
            raise Untrusted("unknown_key", f"signed by key {kid.hex()}, which the trust store does not hold")
        if trusted.revoked:
            raise Untrusted("revoked_key", f"signed by key {kid.hex()} ({trusted.identity}), revoked")
        public = self._public.get(trusted.key_id)
        if public is None:
            public = self._public[trusted.key_id] = trusted.public()
        try:
            public.verify(signature, _signed_bytes(topic, key, value, kid, at_ms, nonce))
        except InvalidSignature:
            raise Untrusted("bad_signature", f"the signature of {trusted.identity} does not match the record "
                                             "(tampered, or moved to another topic or key)") from None
        if timestamp_ms is not None and timestamp_ms > 0:
            if timestamp_ms - at_ms > self.max_delay_ms:
                raise Untrusted("replayed", f"signed {(timestamp_ms - at_ms) // 1000} s before the broker took it "
                                            f"(at most {self.max_delay_ms // 1000} s): a copy of an older record")
            if at_ms - timestamp_ms > self.max_skew_ms:
                raise Untrusted("signed_in_future", f"signed {(at_ms - timestamp_ms) // 1000} s after the broker "
                                                    "took it: the signer's clock is wrong")
        return Verified(trusted, at_ms)


def headers_of(raw: Any) -> Headers:
    """Headers as a list of (name, bytes) pairs, whichever client read them
    (a list of pairs, a mapping, or None)."""
    if not raw:
        return ()
    pairs = raw.items() if isinstance(raw, dict) else raw
    return [(str(name), value.encode() if isinstance(value, str) else value) for name, value in pairs]


def broker_timestamp_ms(message: Any) -> int | None:
    """A Faust message's timestamp in ms (the broker's with LogAppendTime)."""
    stamp = getattr(message, "timestamp", None)
    return int(stamp * 1000) if stamp else None


def open_verifier(store_path: Path, max_delay_s: float, max_skew_s: float) -> Verifier:
    if not store_path.exists():
        raise TrustError(f"no trust store at {store_path}: create keys with `hub keys create` "
                         "(the embedded set-up provisions them itself)")
    return Verifier(TrustStoreFile(store_path), max_delay_s, max_skew_s)
