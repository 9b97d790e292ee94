"""Shipped game content (story worlds and lesson banks) and the loader that validates it."""
