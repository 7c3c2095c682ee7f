#!/usr/bin/env python3
"""Launcher for the terminal client, as the original README promises: ``python run_client.py``.

Same as the ``p2sp-client`` console script; all logic lives in ``p2sp.terminal``.
"""

import sys

from p2sp.terminal.main import main

if __name__ == "__main__":
    sys.exit(main())
