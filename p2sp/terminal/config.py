"""Defaults of the terminal client, in one place.

The SDK takes every value as an argument; these are what the terminal client
passes when the command line says nothing. The port is the server's default
(docs/operations.md, ``P2SP_PORT``); the timings follow the server's idle
timeout (300 s, docs/protocol.md "Framing errors") with a wide margin.
"""

from __future__ import annotations

from typing import Final

DEFAULT_HOST: Final = "127.0.0.1"
DEFAULT_PORT: Final = 18888

#: seconds between keepalive pings (the server closes connections idle for 300 s)
PING_INTERVAL: Final = 30.0
#: seconds to wait for a response before telling the user the server is not answering
REQUEST_TIMEOUT: Final = 15.0
#: first and largest pause between reconnect attempts, in seconds
RECONNECT_DELAY: Final = 0.5
RECONNECT_MAX_DELAY: Final = 10.0
#: seconds a piped session waits at end of input for events still on their way
PIPE_GRACE: Final = 0.3
