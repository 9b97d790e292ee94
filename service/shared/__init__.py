"""What several server processes share through Redis (REDIS_URL): chapter event streams, wake-ups, the start limit."""
