"""The audit trail's entries (审计记录) and their chains, without Kafka.

An entry says who (an identity), did what (an ``AuditAction``), to what
(an event ID, a lead ID, a team, a key), when, with what outcome and why;
never personal data. Entries are chained: each holds the SHA-256 of the one
before it in its chain, so an edit or a deletion breaks a link, and each
chain's writer (a worker) signs a ``HEAD`` entry at intervals and on
shutdown, so the chain up to it cannot be rewritten without its key. A new
chain (a worker starting) begins with a signed ``CHAIN_START`` that names
the hash of the last head its predecessor signed.
"""
from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any
from collections.abc import Callable, Mapping

import orjson

from hub.trust.keys import TrustStore

GENESIS = ""  # the ``prev`` of a chain's first entry when no head came before it
UNPROVEN = "unproven"  # the actor of a record (or request) whose sender is not proven


class AuditAction(StrEnum):
    CHAIN_START = "CHAIN_START"  # a worker began a chain (detail: its settings, its predecessor)
    HEAD = "HEAD"  # a worker signed its chain up to here
    EVENT_ACCEPTED = "EVENT_ACCEPTED"  # outcome: new, duplicate, near_duplicate, ...
    RECORD_REFUSED = "RECORD_REFUSED"  # any record the worker refused: reason code, where it sits
    LEAD_PUBLISHED = "LEAD_PUBLISHED"  # detail: status, teams whose topics received it, evidence
    FEEDBACK_APPLIED = "FEEDBACK_APPLIED"  # outcome: the new status
    TICK = "TICK"  # a worker's clock tick checked deadlines (object: the partition)
    DRILL = "DRILL"  # an operator's drill tick
    BOARD_LOGIN = "BOARD_LOGIN"  # outcome: granted or denied
    BOARD_VIEW = "BOARD_VIEW"  # a team's page showed these leads (logged when they change)
    BOARD_DENIED = "BOARD_DENIED"  # 401 or 403, with the page asked for
    KEY_CREATED = "KEY_CREATED"  # seen in the trust store
    KEY_REVOKED = "KEY_REVOKED"


@dataclass(frozen=True)
class Note:
    """What happened, before it is chained: the flow's and the board's side."""

    actor: str  # an identity ("team:samr-taigu"), or "unproven" for a record nobody signed validly
    action: AuditAction
    object: str  # event ID, lead ID, team, key ID, partition
    outcome: str
    reason: str | None = None
    source: str | None = None  # topic/partition/offset of the record it is about: replays share it
    detail: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Entry:
    """A chained note."""

    chain: str
    seq: int
    prev: str  # hex SHA-256 of the entry before it in the chain (GENESIS, or a predecessor's head)
    at_ms: int
    actor: str
    action: AuditAction
    object: str
    outcome: str
    reason: str | None
    source: str | None
    detail: Mapping[str, str]
    hash: str
    signature: str | None = None  # CHAIN_START and HEAD entries: the writer's Ed25519 signature over the hash, hex
    key_id: str | None = None  # CHAIN_START and HEAD entries: the key that signed

    def body(self) -> dict[str, Any]:
        """What the hash covers: everything but the hash and the signature."""
        return {"chain": self.chain, "seq": self.seq, "prev": self.prev, "at_ms": self.at_ms, "actor": self.actor,
                "action": str(self.action), "object": self.object, "outcome": self.outcome, "reason": self.reason,
                "source": self.source, "detail": dict(sorted(self.detail.items())), "key_id": self.key_id}

    def to_record(self) -> dict[str, Any]:
        return {**self.body(), "hash": self.hash, "signature": self.signature}

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> Entry:
        return cls(record["chain"], int(record["seq"]), record["prev"], int(record["at_ms"]), record["actor"],
                   AuditAction(record["action"]), record["object"], record["outcome"], record["reason"],
                   record["source"], dict(record["detail"]), record["hash"], record["signature"],
                   record["key_id"])


def digest(body: Mapping[str, Any]) -> str:
    """SHA-256 of the canonical JSON (keys sorted, compact, UTF-8)."""
    return hashlib.sha256(orjson.dumps(body, option=orjson.OPT_SORT_KEYS)).hexdigest()


def head_message(entry_hash: str, chain: str, seq: int) -> bytes:
    """What a head's signature covers."""
    return f"supervision-hub audit head v1\x00{chain}\x00{seq}\x00{entry_hash}".encode()


class Chain:
    """One writer's chain: appends notes as entries, each linked to the last."""

    def __init__(self, chain: str, prev: str = GENESIS, seq: int = 0) -> None:
        self.chain, self.prev, self.seq = chain, prev, seq

    def append(self, note: Note, at_ms: int, key_id: str | None = None) -> Entry:
        fields = (self.chain, self.seq, self.prev, at_ms, note.actor, note.action, note.object, note.outcome,
                  note.reason, note.source, note.detail)
        # Every event and lead is noted: two plain constructions cost less
        # than one and a dataclasses.replace (which walks the fields each call).
        entry = Entry(*fields, hash=digest(Entry(*fields, hash="", key_id=key_id).body()), key_id=key_id)
        self.prev, self.seq = entry.hash, self.seq + 1
        return entry

    def signed(self, note: Note, at_ms: int, key_id: str, sign: Callable[[bytes], bytes]) -> Entry:
        """An entry its writer signs over everything before it (its own hash
        included): a chain's start and its heads, so that no one without a
        worker's key can begin a chain or seal one."""
        entry = self.append(note, at_ms, key_id)
        return dataclasses.replace(entry, signature=sign(head_message(entry.hash, entry.chain, entry.seq)).hex())

    def head(self, at_ms: int, actor: str, key_id: str, sign: Callable[[bytes], bytes]) -> Entry:
        """A signed head over everything before it."""
        return self.signed(Note(actor, AuditAction.HEAD, self.chain, "signed"), at_ms, key_id, sign)


def key_changes(seen: Mapping[str, bool], store: TrustStore) -> tuple[list[Note], dict[str, bool]]:
    """Keys the trust store gained, or revoked, since ``seen`` (key ID ->
    revoked): the notes, and what is seen now. The trust store's writer is
    the operators: the actor is theirs, the identity the key's."""
    now = {k.key_id: k.revoked for k in store.keys.values()}
    notes = [Note("operator:trust-store", AuditAction.KEY_CREATED if key_id not in seen else AuditAction.KEY_REVOKED,
                  key_id, "seen", detail={"identity": store.keys[key_id].identity})
             for key_id, revoked in sorted(now.items()) if key_id not in seen or (revoked and not seen[key_id])]
    return notes, now
