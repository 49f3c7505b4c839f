"""Kafka plumbing: connections, topics and their contracts, Avro, ACLs, TLS,
the embedded broker, and readers of the hub's signed topics."""
