"""Background work of the backend: the outbox relay (a loop in every replica) and the
reminder scan (run when the cron binding calls)."""
