"""Start the p2sp server: ``python run_server.py [--port 18888] ...`` (seed 002's launcher)."""

import sys

from p2sp.server.cli import main

if __name__ == "__main__":
    sys.exit(main())
