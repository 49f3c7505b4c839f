"""Connectors are found through the ``supervision_hub.connectors`` entry points."""
from __future__ import annotations

from importlib.metadata import entry_points

from connectors.sdk import Connector
from hub.settings import CONNECTOR_ENTRY_POINTS as ENTRY_POINT_GROUP


class UnknownConnector(LookupError):
    pass


def available() -> dict[str, type[Connector]]:
    found: dict[str, type[Connector]] = {}
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        cls = ep.load()
        if not (isinstance(cls, type) and issubclass(cls, Connector)):
            raise TypeError(f"entry point {ep.name} = {ep.value} is not a Connector subclass")
        found[ep.name] = cls
    return dict(sorted(found.items()))


def load(name: str) -> type[Connector]:
    connectors = available()
    if name not in connectors:
        raise UnknownConnector(f"no connector {name!r}; installed: {', '.join(connectors) or 'none'}")
    return connectors[name]
