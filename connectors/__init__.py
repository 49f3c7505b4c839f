"""Agency connectors: each reads one export format and yields canonical events.

``connectors.sdk`` is the base an agency builds on; ``connectors.runner`` owns
the producer, serialisation, cursors, dead letters and metrics. Connectors are
found through the ``supervision_hub.connectors`` entry-point group.
"""
