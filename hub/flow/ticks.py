"""The lifecycle's clock on one partition (a worker's tick, or an operator's
drill): every business of the partition with a deadline due by then is
escalated, and the tick is audited."""
from __future__ import annotations

from hub.audit.entries import AuditAction, Note
from hub.flow.batch import Batch, Context
from hub.flow.deadletters import position
from hub.flow.effects import Observation, Seen
from hub.flow.messages import Tick
from hub.trust import Role


def apply(ctx: Context, tick: Tick, batch: Batch) -> None:
    partition = tick.record.partition
    escalated = 0
    for business in ctx.deadlines.due(partition, tick.at_ms):
        state = batch.state(business, partition)
        for level in state.escalate_due(ctx.lifecycle, tick.at_ms):
            batch.effects.observations.append(Observation(Seen.ESCALATED, level))
            batch.changed[business] = state
            escalated += 1
        ctx.deadlines.index(business, state, partition)
    batch.effects.observations.append(Observation(Seen.TICK, str(partition)))
    drill = batch.sender.startswith(f"{Role.OPERATOR}:")
    batch.effects.audit.append(Note(batch.sender, AuditAction.DRILL if drill else AuditAction.TICK,
                                    f"partition {partition}", f"{escalated} escalated",
                                    source=position(tick.record), detail={"at_ms": str(tick.at_ms)}))
