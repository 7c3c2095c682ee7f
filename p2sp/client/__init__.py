"""The p2sp Python SDK: ``from p2sp.client import Client`` (see ``p2sp.client.client``)."""

from p2sp.client.client import (
    Client,
    ConnectionLost,
    Event,
    RequestError,
    RequestFailed,
    RequestTimeout,
)

__all__ = [
    "Client",
    "ConnectionLost",
    "Event",
    "RequestError",
    "RequestFailed",
    "RequestTimeout",
]
