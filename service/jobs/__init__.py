"""Deferred work after each chapter: summaries and character descriptions."""
