"""Every command of the terminal client, one module per group of commands.

Importing this package registers them, in the order ``help`` lists them;
``COMMANDS`` here is the full table (``p2sp.terminal.registry`` holds it).
"""

import importlib

from p2sp.terminal.registry import COMMANDS, Command, find_command, help_lines

__all__ = ["COMMANDS", "MODULES", "Command", "find_command", "help_lines"]

MODULES = ("account", "messages", "groups", "admin", "help")

for _module in MODULES:
    importlib.import_module(f"{__name__}.{_module}")
