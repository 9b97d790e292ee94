"""Persistence: SQLAlchemy models, the repositories and the durable job queue."""
