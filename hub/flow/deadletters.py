"""A record refused by the flow: its dead letter (死信), counted and audited."""
from __future__ import annotations

import datetime as dt
import hashlib
from typing import Any

from hub.audit.entries import UNPROVEN, AuditAction, Note
from hub.flow.effects import Effects, Observation, Seen, Send
from hub.flow.messages import UNTRUSTED_CODES, Reader, Record
from hub.flow.topics import DEADLETTER_TOPIC


def refuse(effects: Effects, reader: Reader, code: str, reason: str, record: Record,
           sender: str = UNPROVEN) -> None:
    """The record's dead letter, its count by reason, and its audit entry
    (naming the lead it claimed to be about, if it named one)."""
    effects.first.append(Send(DEADLETTER_TOPIC, b"worker", "deadletter", dead_letter(code, reason, record)))
    effects.observations.append(Observation(Seen.DEAD_LETTER, code))
    claimed = reader.claimed(record)
    effects.audit.append(Note(sender, AuditAction.RECORD_REFUSED, claimed or record.topic, "refused", code,
                              position(record),
                              {"topic": record.topic, **({"claimed_lead": claimed} if claimed else {})}))
    if code in UNTRUSTED_CODES:
        effects.observations.append(Observation(Seen.UNTRUSTED, code))


def dead_letter(code: str, reason: str, record: Record) -> dict[str, Any]:
    """Where the record is and what it was, never what it said: a forged or
    mistyped record may carry personal data in any byte. ``offset`` finds it
    on its topic; the digests tell two dead letters of the same bytes apart."""
    key, value = record.key, record.value
    original = {"topic": record.topic, "partition": str(record.partition), "offset": str(record.offset),
                "key_sha256": hashlib.sha256(key).hexdigest() if key is not None else "none",
                "value_bytes": str(len(value)) if value is not None else "none",
                "value_sha256": hashlib.sha256(value).hexdigest() if value is not None else "none"}
    return {"stage": "worker", "source_file": None, "source_row": None, "column": None,
            "reason_code": code, "reason": reason, "original": original,
            "failed_at": dt.datetime.now(dt.UTC)}


def position(record: Record) -> str:
    """Where a record sits: a replay of it has the same position."""
    return f"{record.topic}/{record.partition}/{record.offset}"
