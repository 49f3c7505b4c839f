"""The domain model: plain Python, no Kafka, testable alone."""
