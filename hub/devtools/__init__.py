"""Developer tools apart from the runtime: the benchmark, the chaos drill and sample exports."""
