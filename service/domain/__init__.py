"""Pure rules of the game: no I/O, no imports from the rest of the service."""
