"""What ``hub.edge.faust_patches`` relies on in Faust and aiokafka's private
parts, checked on the installed versions without a broker: an upgrade that
renames or removes any of it fails here, loudly, instead of silently
turning off strict commits, stall healing, fencing or the stop watchdog."""
from __future__ import annotations

import asyncio
import inspect
import re

import faust
import mode
import pytest
from aiokafka.consumer.group_coordinator import GroupCoordinator
from faust.sensors.monitor import Monitor
from faust.streams import Stream
from faust.transport import consumer as faust_consumer
from faust.types import TP, Message

from hub.edge.faust_patches import Processed, QuietMonitor, StoppableWorker, strict_commits


@pytest.fixture
def app() -> faust.App:
    return faust.App("hub-patches-test", broker="kafka://127.0.0.1:1")  # never connected


def test_the_consumer_keeps_the_bookkeeping_strict_commits_and_healing_use(app: faust.App) -> None:
    consumer = app.consumer
    for name in ("_acked", "_acked_index", "_committed_offset", "_read_offset", "_unacked_messages"):
        assert hasattr(consumer, name), f"faust's Consumer has no {name}: see hub.edge.faust_patches"
    # Faust calls _new_offset(tp) to decide each partition's commit: the patch replaces it.
    assert "self._new_offset(" in inspect.getsource(faust_consumer.Consumer)
    assert list(inspect.signature(consumer._new_offset).parameters) == ["tp"]
    strict_commits(consumer, {}, Processed())
    assert consumer._new_offset.__qualname__.startswith("strict_commits")
    # It asks only about the partitions whose acknowledgements it holds: the patch keeps their entries.
    assert "for tp in self._acked" in inspect.getsource(faust_consumer.Consumer._filter_tps_with_pending_acks)


def test_the_fence_reaches_the_group_coordinator(app: faust.App) -> None:
    thread = app.consumer._thread
    assert callable(thread.call_thread) and callable(thread._ensure_consumer)
    assert inspect.iscoroutinefunction(GroupCoordinator._do_heartbeat)
    assert "self.generation" in inspect.getsource(GroupCoordinator.__init__)
    assert hasattr(app, "consumer_generation_id")
    assert "generation_id" in inspect.signature(Message.__init__).parameters
    assert "acked" in Message.__slots__
    assert "tp" in Message.__slots__  # the stall healer tells in-flight partitions by it


def test_the_healer_finds_aiokafkas_fetch_position(app: faust.App) -> None:
    """``fetched_to`` reads the aiokafka consumer in Faust's consumer thread:
    its subscription state, by the path aiokafka's own fetcher shares."""
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from aiokafka.consumer.fetcher import Fetcher
    from aiokafka.consumer.subscription_state import TopicPartitionState

    from hub.edge.faust_patches import fetched_to

    tp = TopicPartition("hub.events.samr", 0)
    assert fetched_to(app.consumer, tp) is None  # not started: no aiokafka consumer yet
    assert "self._subscription" in inspect.getsource(AIOKafkaConsumer.__init__)
    # the fetcher is handed the same state, and moves its positions
    assert re.search(r"Fetcher\(\s*self\._client,\s*self\._subscription,", inspect.getsource(AIOKafkaConsumer.start))
    assert "self._subscriptions.subscription.assignment" in inspect.getsource(Fetcher)
    assert "self._position = None" in inspect.getsource(TopicPartitionState.__init__)

    async def assigned_and_sought() -> int | None:
        consumer = AIOKafkaConsumer(bootstrap_servers="127.0.0.1:1")  # never started, never connected
        try:
            consumer.assign([tp])
            app.consumer._thread._consumer = consumer
            before = fetched_to(app.consumer, tp)  # awaiting its reset
            consumer._subscription.subscription.assignment.state_value(tp).seek(264)  # as the fetcher does
            assert before is None
            return fetched_to(app.consumer, TP(tp.topic, tp.partition))  # Faust's TP finds aiokafka's
        finally:
            app.consumer._thread._consumer = None
            await consumer.stop()

    assert asyncio.run(assigned_and_sought()) == 264


def test_the_monitor_hooks_silenced_exist() -> None:
    for hook in ("on_message_in", "on_message_out", "on_stream_event_in", "on_stream_event_out",
                 "on_send_initiated", "on_send_completed", "on_table_get", "on_table_set"):
        assert hook in Monitor.__dict__, hook
        assert getattr(QuietMonitor, hook) is not getattr(Monitor, hook)


def test_the_worker_stop_the_watchdog_wraps_is_still_where_it_was() -> None:
    source = inspect.getsource(mode.Worker)
    assert "_signal_stop_time" in source and "def _schedule_shutdown(self, signal" in source
    assert StoppableWorker._schedule_shutdown is not mode.Worker._schedule_shutdown
    assert hasattr(Stream, "take_events")


def test_a_table_entry_set_without_its_changelog_record_reads_back(app: faust.App) -> None:
    """The hub writes the changelog record itself; Faust's __setitem__ would
    send one more (on_key_set), and the store is the table's ``data``."""
    from mode.utils.collections import ManagedUserDict

    from hub.edge.faust_patches import set_without_changelog

    assert "self.on_key_set(key, value)" in inspect.getsource(ManagedUserDict.__setitem__)
    table = app.Table("states", key_type=bytes, value_type=bytes, use_partitioner=True, partitions=4)
    set_without_changelog(table, b"business", b"state")
    assert table.get(b"business") == b"state" and dict(table.items()) == {b"business": b"state"}
