"""Display lines of the terminal client: pure functions of events, data and strings."""

from p2sp.terminal.display.handler import ClientMessageHandler
from p2sp.terminal.display.neutralise import neutralise

__all__ = ["ClientMessageHandler", "neutralise"]
