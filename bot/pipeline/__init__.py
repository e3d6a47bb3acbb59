"""One event from the queue to the reply LINE accepted, exactly once (event log and outbox)."""
