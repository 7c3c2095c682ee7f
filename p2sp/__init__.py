"""p2sp: an asyncio chat server, its wire protocol, Python SDK and terminal client."""

__version__ = "0.1.0"
PROTOCOL_VERSION = 2
