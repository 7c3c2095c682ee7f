"""``python -m p2sp.terminal``: the terminal client, as ``p2sp-client``."""

import sys

from p2sp.terminal.main import main

sys.exit(main())
