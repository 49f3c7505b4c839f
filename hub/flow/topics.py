"""The names of the topics the flow reads and writes (``hub.kafka.topics`` owns
their creation and contracts)."""
from __future__ import annotations

from hub.domain.events import Agency

DEADLETTER_TOPIC = "hub.deadletter"
LEADS_TOPIC = "hub.leads"
FEEDBACK_TOPIC = "hub.feedback"  # the clock: workers' ticks and operators' drills
# Until issue 33 every connector's cursors shared this topic; still read
# where it exists (an upgraded installation), never written.
LEGACY_CURSOR_TOPIC = "hub.connector-offsets"
RESOLUTION_TOPIC = "hub.resolution"
AUDIT_TOPIC = "hub.audit"
BUSINESS_TABLE = "businesses"
RESOLVER_TABLE = "resolver"


def events_topic(agency: Agency) -> str:
    return f"hub.events.{agency.value.lower()}"


def feedback_topic(team: str) -> str:
    """Where a team answers on its leads: the topic names the team, so an
    ACL can give it that topic alone."""
    return f"{FEEDBACK_TOPIC}.{team}"


def outcomes_topic(agency: str) -> str:
    """Where the outcome of a lead goes back to an agency whose evidence raised it."""
    return f"hub.outcomes.{agency.lower()}"


def cursor_topic(connector: str) -> str:
    """A connector's cursors (rows delivered per file): a topic of its own,
    so an ACL can give it its own and no other's (the keys name its files)."""
    return f"{LEGACY_CURSOR_TOPIC}.{connector}"
