"""``python -m bench`` (``python -m bench fuzz ...`` runs ``bench.fuzz``, docs/fuzzing.md)."""

import sys

from bench import fuzz, run

raise SystemExit(fuzz.main(sys.argv[2:]) if sys.argv[1:2] == ["fuzz"] else run.main())
