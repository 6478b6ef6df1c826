"""The built-in output: every processed event appended to a capped Redis Stream."""

from __future__ import annotations

from dataclasses import dataclass

import redis

from workers.events import ProcessedEvent


@dataclass
class StreamOutput:
    """XADD each event to `name`, trimming to about `maxlen` entries.

    Parameters:
      client: a Redis client (the broker's server).
      name: the stream key downstream consumers read (with consumer groups).
      maxlen: approximate cap on the stream's length.
    """

    client: redis.Redis
    name: str
    maxlen: int

    def emit(self, event: ProcessedEvent) -> str:
        """Append one event; returns the stream entry id."""
        entry_id = self.client.xadd(self.name, event.stream_fields(), maxlen=self.maxlen, approximate=True)  # type: ignore[arg-type]
        return entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
