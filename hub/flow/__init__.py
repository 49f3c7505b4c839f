"""The hub's flow, free of any broker: records in, effects out.

- ``messages``: what comes in (``Record``; typed ``EventMessage``,
  ``FeedbackMessage``, ``Tick``, ``ResolutionMessage``; ``Refused``);
- ``effects``: what goes out (``Send``, ``StateWrite``, ``Observation``), in
  the order the edge must carry it out;
- ``store``: the read side of the state tables (``Store``, ``MemoryStore``);
- ``core``: ``Flow``, events, feedback, ticks and leads; ``resolving``:
  entity resolution's messages;
- ``codec``, ``topics``: what the flow needs of serialisation and topic names.
"""
from hub.flow.core import Flow
from hub.flow.effects import Effects, Observation, Seen, Send, StateWrite
from hub.flow.messages import Record
from hub.flow.store import MemoryStore, Store

__all__ = ["Effects", "Flow", "MemoryStore", "Observation", "Record", "Seen", "Send", "StateWrite", "Store"]
