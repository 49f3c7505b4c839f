"""The worker's edge: the Faust app, its publisher, timers, retries, metrics and the audit log's producer."""
