"""Outputs of processed events: the Redis Stream (built in) and HTTP destinations from outputs.toml."""

from workers.outputs.declaration import DeclaredOutput, OutputsError, load_outputs
from workers.outputs.forwards import DestinationBusy, Forwarding, forward, forward_lease_deadline
from workers.outputs.http import (
    DestinationRejected,
    DestinationUnavailable,
    ForwardError,
    HttpOutput,
    UnknownDestination,
    signed_headers,
    webhook_id_for,
)
from workers.outputs.stream import QueuedWork, StreamOutput

__all__ = [
    "DeclaredOutput",
    "DestinationBusy",
    "DestinationRejected",
    "DestinationUnavailable",
    "ForwardError",
    "Forwarding",
    "HttpOutput",
    "OutputsError",
    "QueuedWork",
    "StreamOutput",
    "UnknownDestination",
    "forward",
    "forward_lease_deadline",
    "load_outputs",
    "signed_headers",
    "webhook_id_for",
]
