"""The flow keeps the states it wrote, decoded, for the next batch
(``hub.flow.batch.DecodedStates``): reused only while the store holds the
bytes they were written as, so a batch the edge did not write, a record that
failed or a rebalance never lets a stale object stand in for the store."""
from __future__ import annotations

from pathlib import Path

import pytest

from hub.domain.leads import BusinessState
from hub.flow import Record
from hub.flow.batch import DecodedStates
from hub.devtools.samples import synthetic_penalties
from hub.settings import Settings
from hub.testing.bus import Bus


def test_a_state_is_handed_out_once_and_only_for_the_bytes_it_was_written_as() -> None:
    kept = DecodedStates(2)
    state = BusinessState(name="甲")
    kept.keep(b"a", b"v1", state)
    assert kept.take(b"a", b"v2") is None  # the store moved on: not reused
    assert kept.take(b"a", b"v1") is None  # and forgotten
    kept.keep(b"a", b"v1", state)
    assert kept.take(b"a", None) is None  # the store lost it
    kept.keep(b"a", b"v1", state)
    assert kept.take(b"a", b"v1") is state
    assert kept.take(b"a", b"v1") is None  # handed out once: the batch owns it now


def test_the_most_recently_written_are_kept_within_the_size() -> None:
    kept = DecodedStates(2)
    for key in (b"a", b"b", b"a", b"c"):  # a written again: b is the oldest
        kept.keep(key, key, BusinessState())
    assert len(kept) == 2
    assert kept.take(b"b", b"b") is None and kept.take(b"a", b"a") is not None
    off = DecodedStates(0)
    off.keep(b"a", b"a", BusinessState())
    assert len(off) == 0


def _batches(tmp_path: Path, size: int) -> tuple[list[list[Record]], Settings]:
    """A penalty export's records in batches, and the settings whose keys signed them."""
    bus = Bus()
    bus.publish_file("samr.penalty", synthetic_penalties(tmp_path / "p.csv", rows=240, businesses=30))
    records = sorted((r for q in bus.queues.values() for r in q), key=lambda r: (r.offset, r.partition))
    return [records[i:i + size] for i in range(0, len(records), size)], bus.settings


@pytest.mark.parametrize("cache", [10_000, 0])
def test_a_batch_the_edge_did_not_write_meets_the_stored_states_again(tmp_path: Path, cache: int) -> None:
    """Processed once without its writes (the edge failed), the batch is
    processed again: it must find the states as stored, not as the first
    attempt left them (its events would then be duplicates, its leads lost)."""
    batches, settings = _batches(tmp_path, 40)
    bus = Bus(settings.with_overrides(state_cache_businesses=cache))
    for batch in batches[:3]:
        bus.process(batch)
    if cache:
        assert len(bus.flow.decoded) > 0
    unwritten = bus.process(batches[3], write=False).effects
    again = bus.process(batches[3]).effects
    assert [s.value["evidence"] for s in again.leads] == [s.value["evidence"] for s in unwritten.leads] != []
    assert [w.key for w in again.states] == [w.key for w in unwritten.states]
    for batch in batches[4:]:
        bus.process(batch)
    # Every event sits in its business's state once, as without the cache.
    facts = sum(len(BusinessState.from_bytes(v).facts) for v in bus.businesses.values())
    assert facts == sum(len(b) for b in batches)


def test_the_cache_changes_no_lead(tmp_path: Path) -> None:
    batches, settings = _batches(tmp_path, 40)
    published = []
    for cache in (10_000, 0):
        bus = Bus(settings.with_overrides(state_cache_businesses=cache))
        for batch in batches:
            bus.process(batch)
        published.append({k: (v["status"], [e["event_id"] for e in v["evidence"]]) for k, v in bus.leads.items()})
    assert published[0] == published[1] != {}


def test_a_rebalance_forgets_the_decoded_states(tmp_path: Path) -> None:
    batches, settings = _batches(tmp_path, 40)
    bus = Bus(settings)
    bus.process(batches[0])
    assert len(bus.flow.decoded) > 0
    bus.flow.revoke(frozenset({0}))
    assert len(bus.flow.decoded) == 0
    bus.flow.assign(frozenset(range(4)))  # the pass over the stored states keeps them again
    assert len(bus.flow.decoded) == len(bus.businesses)
    bus.flow.renew()  # fenced: another incarnation
    assert len(bus.flow.decoded) == 0
