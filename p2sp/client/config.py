"""The SDK's defaults and fixed numbers, in one place.

Every value an application may want to change is an argument of ``Client``;
these are its defaults, and the few numbers that follow from the protocol.
"""

from __future__ import annotations

from typing import Final

from p2sp.common.limits import ACKS_PER_REQUEST

#: ``kicked`` reasons after which reconnecting would be wrong: the first would
#: fight the newer session forever, the second is refused.
NO_RECONNECT_KICKS: Final = frozenset({"logged_in_elsewhere", "blocked"})

#: bytes asked of the socket per read
READ_CHUNK: Final = 64 * 1024
#: the server takes at most this many entries in one ``ack`` request
MAX_ACKS_PER_REQUEST: Final = ACKS_PER_REQUEST
#: pending acknowledgements that trigger a flush without waiting for ``ack_interval``
ACK_BATCH: Final = 200
#: default ``ack_interval``: the longest a taken message waits to be acknowledged.
#: Each ``ack`` is a request the server reads, commits and answers; at 0.2 s a
#: client getting a few messages a second acked nearly every one of them,
#: which cost the server about as much as the messages themselves
#: (bench/RESULTS.md). The price of waiting longer is only that a client which
#: crashes gets up to this many seconds of messages again at its next login.
ACK_INTERVAL: Final = 1.0
#: default ``read_interval``: how long ``mark_read`` waits to batch read
#: cursors (one ``read`` request per conversation per flush).
READ_INTERVAL: Final = 0.5
#: default ``message_cache``: how many recently seen messages the SDK keeps by
#: ``message_id``, so an edit or a retraction can be applied to them.
MESSAGE_CACHE: Final = 2000
