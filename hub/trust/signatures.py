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
import logging
import os
import struct
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from collections.abc import Callable, Sequence

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from hub.trust.keys import SigningKey, TrustedKey, TrustError, TrustStore

log = logging.getLogger(__name__)

HEADER = "hub-sig"
_VERSION = 1
_LAYOUT = struct.Struct(">B8sq16s64s")  # version, key ID, signed at (ms), nonce, signature
_DOMAIN = b"supervision-hub record signature v1\x00"
# A batch's records (version 2): one signature over the root of a hash tree
# of their digests; each record carries the signature, its index and the
# sibling hashes up to the root. A verifier checks the signature of a root
# once, and each record's path to it (two SHA-256s a level).
_BATCH_VERSION = 2
_BATCH_LAYOUT = struct.Struct(">B8sq16s64sIB")  # ... as above, then leaf index, tree depth; the path follows
_BATCH_DOMAIN = b"supervision-hub batch signature v2\x00"
_MAX_DEPTH = 16  # 65 536 records a batch
_EMPTY = hashlib.sha256(b"\x02supervision-hub empty leaf").digest()

Headers = Sequence[tuple[str, bytes | None]]


class Untrusted(Exception):
    """A record whose sender is not proven: refused with this reason code."""

    def __init__(self, code: str, reason: str) -> None:
        super().__init__(reason)
        self.code = code


def _record_bytes(topic: str, key: bytes | None, value: bytes) -> bytes:
    topic_bytes = topic.encode()
    keyed = b"\x00" if key is None else b"\x01" + struct.pack(">I", len(key)) + key
    return b"".join((struct.pack(">H", len(topic_bytes)), topic_bytes, keyed, hashlib.sha256(value).digest()))


def _signed_bytes(topic: str, key: bytes | None, value: bytes, key_id: bytes, at_ms: int, nonce: bytes) -> bytes:
    return b"".join((_DOMAIN, _record_bytes(topic, key, value), key_id, struct.pack(">q", at_ms), nonce))


def _leaf(topic: str, key: bytes | None, value: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + _record_bytes(topic, key, value)).digest()


def _node(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def _root_bytes(root: bytes, depth: int, key_id: bytes, at_ms: int, nonce: bytes) -> bytes:
    return b"".join((_BATCH_DOMAIN, root, bytes([depth]), key_id, struct.pack(">q", at_ms), nonce))


def _root_of(leaf: bytes, index: int, path: list[bytes]) -> bytes:
    node = leaf
    for level, sibling in enumerate(path):
        node = _node(sibling, node) if (index >> level) & 1 else _node(node, sibling)
    return node


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

    def batch(self, records: list[tuple[str, bytes | None, bytes]]) -> list[list[tuple[str, str | bytes | None]]]:
        """Each record's headers, one signature for them all (a hash tree's
        root); a single record is signed on its own."""
        if len(records) <= 1:
            return [self.headers(*r) for r in records]
        depth = max(1, (len(records) - 1).bit_length())
        if depth > _MAX_DEPTH:
            half = len(records) // 2
            return self.batch(records[:half]) + self.batch(records[half:])
        levels = _tree(records, depth)
        at_ms, nonce = int(self.clock() * 1000), os.urandom(16)
        signature = self.key.private.sign(_root_bytes(levels[-1][0], depth, self._id, at_ms, nonce))
        head = _BatchHead(self._id, at_ms, nonce, signature, depth)
        return [[(HEADER, head.pack(index) + _path(levels, index, depth))] for index in range(len(records))]


def _tree(records: list[tuple[str, bytes | None, bytes]], depth: int) -> list[list[bytes]]:
    """The hash tree over the records' leaves (padded to ``depth``), level by level up to its root."""
    levels = [[_leaf(*r) for r in records] + [_EMPTY] * ((1 << depth) - len(records))]
    while len(levels[-1]) > 1:
        below = levels[-1]
        levels.append([_node(below[i], below[i + 1]) for i in range(0, len(below), 2)])
    return levels


def _path(levels: list[list[bytes]], index: int, depth: int) -> bytes:
    """The siblings from a leaf up to the root: what proves the leaf is under it."""
    return b"".join(levels[level][(index >> level) ^ 1] for level in range(depth))


@dataclass(frozen=True)
class _BatchHead:
    """What every record's header of a signed batch holds besides its index and path."""

    key_id: bytes
    at_ms: int
    nonce: bytes
    signature: bytes
    depth: int

    def pack(self, index: int) -> bytes:
        return _BATCH_LAYOUT.pack(_BATCH_VERSION, self.key_id, self.at_ms, self.nonce, self.signature, index,
                                  self.depth)


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
            try:
                self.store = TrustStore.load(self.path)
            except (ValueError, KeyError, TypeError, TrustError) as exc:
                # An operator's bad edit must not turn every record into a
                # dead letter: the last good store stays until the file is fixed.
                log.critical("the trust store %s cannot be read (%s); keeping the one read before", self.path, exc)
                if self._stamp is None:
                    raise
            self._stamp = stamp
        return self.store


class Verifier:
    """Checks a record's signature against the trust store."""

    def __init__(self, trust: TrustStoreFile, max_delay_s: float = 300.0, max_skew_s: float = 300.0) -> None:
        self.trust = trust
        self.max_delay_ms = int(max_delay_s * 1000)
        self.max_skew_ms = int(max_skew_s * 1000)
        self._public: dict[str, Ed25519PublicKey] = {}
        # Roots whose signature verified: the batch's other records need only their paths.
        self._roots: dict[bytes, None] = {}

    def verify(self, topic: str, key: bytes | None, value: bytes, headers: Headers | None,
               timestamp_ms: int | None) -> Verified:
        """``timestamp_ms``: the record's broker timestamp, when known."""
        raw = _signature_header(headers)
        if raw[0] == _BATCH_VERSION:
            return self._verify_batched(topic, key, value, raw, timestamp_ms)
        return self._verify_single(topic, key, value, raw, timestamp_ms)

    def _verify_single(self, topic: str, key: bytes | None, value: bytes, raw: bytes,
                       timestamp_ms: int | None) -> Verified:
        if len(raw) != _LAYOUT.size or raw[0] != _VERSION:
            raise Untrusted("malformed_signature", f"a signature header of the wrong size or version {raw[0]}")
        _version, kid, at_ms, nonce, signature = _LAYOUT.unpack(raw)
        trusted = self._signer(kid)
        try:
            self._key(trusted).verify(signature, _signed_bytes(topic, key, value, kid, at_ms, nonce))
        except InvalidSignature:
            raise Untrusted("bad_signature", f"the signature of {trusted.identity} does not match the record "
                                             "(tampered, or moved to another topic or key)") from None
        return self._timely(trusted, at_ms, timestamp_ms)

    def _verify_batched(self, topic: str, key: bytes | None, value: bytes, raw: bytes,
                        timestamp_ms: int | None) -> Verified:
        size = _BATCH_LAYOUT.size
        if len(raw) < size:
            raise Untrusted("malformed_signature", "a batch signature header too short")
        _, kid, at_ms, nonce, signature, index, depth = _BATCH_LAYOUT.unpack(raw[:size])
        if not 1 <= depth <= _MAX_DEPTH or len(raw) != size + 32 * depth or index >= 1 << depth:
            raise Untrusted("malformed_signature", "a batch signature's path does not fit its tree")
        trusted = self._signer(kid)
        path = [raw[size + 32 * i:size + 32 * (i + 1)] for i in range(depth)]
        root = _root_of(_leaf(topic, key, value), index, path)
        self._verify_root(trusted, signature, _root_bytes(root, depth, kid, at_ms, nonce))
        return self._timely(trusted, at_ms, timestamp_ms)

    def _verify_root(self, trusted: TrustedKey, signature: bytes, signed: bytes) -> None:
        """A batch's root signature, verified once: its other records need only their paths."""
        proof = signed + signature
        if proof in self._roots:
            return
        try:
            self._key(trusted).verify(signature, signed)
        except InvalidSignature:
            raise Untrusted("bad_signature", f"the batch signature of {trusted.identity} does not cover the "
                                             "record (tampered, or moved to another topic or key)") from None
        if len(self._roots) >= 4096:
            self._roots.pop(next(iter(self._roots)))
        self._roots[proof] = None

    def _signer(self, kid: bytes) -> TrustedKey:
        store = self.trust.refresh()
        trusted = store.keys.get(kid.hex())
        if trusted is None:
            raise Untrusted("unknown_key", f"signed by key {kid.hex()}, which the trust store does not hold")
        if trusted.revoked:
            raise Untrusted("revoked_key", f"signed by key {kid.hex()} ({trusted.identity}), revoked")
        return trusted

    def _key(self, trusted: TrustedKey) -> Ed25519PublicKey:
        public = self._public.get(trusted.key_id)
        if public is None:
            public = self._public[trusted.key_id] = trusted.public()
        return public

    def _timely(self, trusted: TrustedKey, at_ms: int, timestamp_ms: int | None) -> Verified:
        if timestamp_ms is not None and timestamp_ms > 0:
            if timestamp_ms - at_ms > self.max_delay_ms:
                raise Untrusted("replayed", f"signed {(timestamp_ms - at_ms) // 1000} s before the broker took it "
                                            f"(at most {self.max_delay_ms // 1000} s): a copy of an older record")
            if at_ms - timestamp_ms > self.max_skew_ms:
                raise Untrusted("signed_in_future", f"signed {(at_ms - timestamp_ms) // 1000} s after the broker "
                                                    "took it: the signer's clock is wrong")
        return Verified(trusted, at_ms)


def _signature_header(headers: Headers | None) -> bytes:
    """The record's one signature header."""
    found = [v for h, v in headers or () if h == HEADER]
    if not found:
        raise Untrusted("unsigned", "no signature header: the sender is not proven")
    return _only(found)


def _only(found: list[bytes | None]) -> bytes:
    raw = found[-1]
    if len(found) > 1 or raw is None or not raw:
        raise Untrusted("malformed_signature", "an empty signature header, or more than one")
    return raw


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
