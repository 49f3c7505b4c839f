"""The hub's flow, free of any broker: records in, effects out.

- ``messages``: what comes in (``Record``; typed ``EventMessage``,
  ``FeedbackMessage``, ``Tick``, ``ResolutionMessage``; ``Refused``);
- ``effects``: what goes out (``Send``, ``StateWrite``, ``Observation``), in
  the order the edge must carry it out;
- ``store``: the read side of the state tables (``Store``, ``MemoryStore``);
- ``core``: ``Flow``, which applies a batch's records one by one, each
  through the handler of its kind: ``events``, ``feedback``, ``ticks``,
  ``resolving`` (entity resolution) and ``signalling`` (the index signals);
  ``drawing`` draws the leads at the end of the batch. Handlers see a
  ``batch.Batch`` and a ``batch.Context``, never the ``Flow``;
- ``deadletters``: a refused record's dead letter;
- ``codec``, ``topics``: what the flow needs of serialisation and topic names.
"""
from hub.flow.core import Flow
from hub.flow.effects import Effects, Observation, Seen, Send, StateWrite
from hub.flow.messages import Record
from hub.flow.store import MemoryStore, Store

__all__ = ["Effects", "Flow", "MemoryStore", "Observation", "Record", "Seen", "Send", "StateWrite", "Store"]
