"""``python -m bench`` (``python -m bench fuzz ...`` runs ``bench.fuzz``, docs/fuzzing.md;
``gendb`` and ``read`` run ``bench.gendb`` and ``bench.readbench``, docs/benchmark.md)."""

import sys

from bench import fuzz, gendb, readbench, run

COMMANDS = {"fuzz": fuzz.main, "gendb": gendb.main, "read": readbench.main}
command = COMMANDS.get(sys.argv[1]) if sys.argv[1:] else None
raise SystemExit(command(sys.argv[2:]) if command else run.main())
