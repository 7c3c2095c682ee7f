"""p2sp load benchmark: drives the real server over real sockets.

Run ``python -m bench --help``. The load generator speaks frames with
``p2sp.common`` directly (not the SDK) from one or more processes, starts the
server itself on a temporary database, and reports throughput, receiver-side
latency, loss and duplication, and the server's CPU seconds and memory.
See ``docs/benchmark.md``.
"""
