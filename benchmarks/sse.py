"""An incremental text/event-stream parser for the virtual players."""
from __future__ import annotations


class SseReader:
    """Incremental text/event-stream parser: feed text, get (event, data) pairs."""

    def __init__(self) -> None:
        self._buffer = ""

    def feed(self, text: str) -> list[tuple[str, str]]:
        self._buffer = (self._buffer + text).replace("\r\n", "\n")
        events = []
        while "\n\n" in self._buffer:
            block, self._buffer = self._buffer.split("\n\n", 1)
            name, data = "message", []
            for line in block.split("\n"):
                field_name, _, value = line.partition(":")
                value = value[1:] if value.startswith(" ") else value
                if field_name == "event":
                    name = value
                elif field_name == "data":
                    data.append(value)
            if data:
                events.append((name, "\n".join(data)))
        return events
