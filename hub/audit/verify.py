"""Checking an audit trail (``hub audit verify``), without Kafka: every
entry's hash, every link, every signed head, and each new chain's link to
the head before it. The first problem is named with where it sits."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple
from collections.abc import Iterable

from cryptography.exceptions import InvalidSignature

from hub.audit.entries import GENESIS, AuditAction, Entry, digest, head_message
from hub.trust.keys import Role, TrustStore


@dataclass(frozen=True)
class Positioned:
    """An entry and where it sits on the audit topic (or in a file)."""

    where: str  # "hub.audit[0]@17", or "file:line"
    entry: Entry


@dataclass(frozen=True)
class Unreadable:
    """Something where an entry should be that is none (a torn or foreign
    record, a tombstone, a line that is not one): a break in the trail."""

    where: str
    why: str  # its kind of fault, never its content


@dataclass
class Report:
    entries: int = 0
    chains: int = 0
    heads: int = 0
    redelivered: int = 0  # the same entry twice (a retried send): harmless
    unsealed: int = 0  # entries after their chain's last head (a worker killed since)
    problems: list[str] = field(default_factory=list)
    # chain -> the last entry a signed head covers (-1: none); a chain
    # without a signed start is absent: none of its entries is the hub's
    sealed_through: dict[str, int] = field(default_factory=dict)

    def sealed(self, entry: Entry) -> bool:
        return entry.seq <= self.sealed_through.get(entry.chain, -1)

    def proven(self, entry: Entry) -> bool:
        """Whether the entry is in a chain a worker's key began."""
        return entry.chain in self.sealed_through

    @property
    def ok(self) -> bool:
        return not self.problems

    def lines(self) -> list[str]:
        summary = (f"{self.entries} entries in {self.chains} chains, {self.heads} signed heads verified; "
                   f"{self.redelivered} sent twice (harmless); {self.unsealed} after their chain's last head")
        return [summary, *(f"BROKEN: {p}" for p in self.problems)] if self.problems else [summary, "trail intact"]


def verify(trail: Iterable[Positioned | Unreadable], trust: TrustStore, window: bool = False) -> Report:
    """``window``: the trail is the recent part of a longer one (a worker's
    periodic check): a chain may begin before it, and a start may name a
    head before it."""
    report = Report()
    chains = _by_chain(trail, report)
    report.chains = len(chains)
    heads = {p.entry.hash for c in chains.values() for p in c if p.entry.action is AuditAction.HEAD}
    for name, items in chains.items():
        sealed = _chain(items, trust, heads, report, window)
        if sealed is not None:
            report.sealed_through[name] = sealed
    return report


def _by_chain(trail: Iterable[Positioned | Unreadable], report: Report) -> dict[str, list[Positioned]]:
    """The trail's entries per chain, in trail order; each one counted, and
    each unreadable record a problem."""
    chains: dict[str, list[Positioned]] = {}
    for item in trail:
        report.entries += 1
        if isinstance(item, Unreadable):
            report.problems.append(f"{item.where}: not an audit entry ({item.why})")
            continue
        chains.setdefault(item.entry.chain, []).append(item)
    return chains


class _Break(NamedTuple):
    """Where a chain breaks: why, and whether as forged (no signed start:
    nothing in the chain counts)."""

    problem: str
    forged: bool = False


def _chain(items: list[Positioned], trust: TrustStore, heads: set[str], report: Report, window: bool) -> int | None:
    """Check one chain; the last seq a signed head covers, None when the
    chain has no signed start (forged: nothing in it counts)."""
    expected_seq, prev = _expected_start(items[0].entry, window)
    last_head = expected_seq - 1
    for item in items:
        entry = item.entry
        if _redelivered(entry, expected_seq, prev):
            report.redelivered += 1
            continue
        broken = _break_at(entry, expected_seq, prev, trust, heads, window)
        if broken is not None:
            report.problems.append(f"{item.where}: {broken.problem}")
            return None if broken.forged else last_head
        if entry.action is AuditAction.HEAD:
            report.heads += 1
            last_head = entry.seq
        prev, expected_seq = entry.hash, entry.seq + 1
    report.unsealed += expected_seq - 1 - last_head
    return last_head


def _expected_start(first: Entry, window: bool) -> tuple[int, str | None]:
    """The seq and the link the chain's first entry must have: in a window a
    chain may begin before it, at its first entry there."""
    return (first.seq, first.prev) if window and first.seq > 0 else (0, None)


def _redelivered(entry: Entry, expected_seq: int, prev: str | None) -> bool:
    """The entry before, intact, sent again (a retried send): harmless."""
    return (prev is not None and entry.seq == expected_seq - 1 and entry.hash == prev
            and digest(entry.body()) == entry.hash)


def _break_at(entry: Entry, expected_seq: int, prev: str | None, trust: TrustStore, heads: set[str],
              window: bool) -> _Break | None:
    """Why the chain breaks at this entry, if it does."""
    problem = _misplaced(entry, expected_seq, prev)
    if problem:
        return _Break(problem)
    if entry.seq == 0:
        return _start_break(entry, trust, heads, window)
    if entry.action is AuditAction.HEAD and (problem := _head(entry, trust)):
        return _Break(f"head {entry.chain}#{entry.seq}: {problem}")
    return None


def _misplaced(entry: Entry, expected_seq: int, prev: str | None) -> str | None:
    """Whether the entry was changed, forked, follows a gap or does not follow
    the entry before it (not a redelivery: see ``_redelivered``)."""
    if digest(entry.body()) != entry.hash:
        return f"entry {entry.chain}#{entry.seq} was changed after it was written (its hash does not match its content)"
    if entry.seq < expected_seq:
        return f"entry {entry.chain}#{entry.seq} appears again with other content (a forked or rewritten chain)"
    if entry.seq > expected_seq:
        return f"entries {entry.chain}#{expected_seq}..{entry.seq - 1} are missing (deleted)"
    if entry.seq != 0 and entry.prev != prev:
        return (f"entry {entry.chain}#{entry.seq} does not follow #{entry.seq - 1} "
                "(an entry before it was changed or replaced)")
    return None


def _start_break(entry: Entry, trust: TrustStore, heads: set[str], window: bool) -> _Break | None:
    """A chain's first entry: a start a worker signed, naming a head on the trail."""
    if entry.action is not AuditAction.CHAIN_START:
        return _Break(f"chain {entry.chain} does not begin with its start", forged=True)
    problem = _head(entry, trust)
    if problem:
        return _Break(f"chain {entry.chain} has no signed start ({problem}): none of its entries is the hub's",
                      forged=True)
    if entry.prev != GENESIS and entry.prev not in heads and not window:
        return _Break(f"chain {entry.chain} names a predecessor head {entry.prev[:16]}… that is not on the trail "
                      "(deleted)")
    return None


def _head(entry: Entry, trust: TrustStore) -> str | None:
    """Why a signed entry (a start, a head) is not a worker's, if it is not."""
    key = trust.keys.get(entry.key_id or "")
    if key is None or key.role is not Role.WORKER:
        return "signed by a key that is no worker's in the trust store"
    try:
        key.public().verify(bytes.fromhex(entry.signature or ""), head_message(entry.hash, entry.chain, entry.seq))
    except (InvalidSignature, ValueError):
        return "its signature does not verify (forged or altered)"
    return None
