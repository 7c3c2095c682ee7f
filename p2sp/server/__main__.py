"""``python -m p2sp.server``: the same as ``p2sp-server``."""

import sys

from p2sp.server.cli import main

sys.exit(main())
