"""Event contracts (architecture §4): envelope, JSON Schemas, topics and the outbox writer."""
