"""Deferred work after each chapter: summaries, character descriptions and pictures."""
