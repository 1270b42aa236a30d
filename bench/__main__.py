"""`python -m bench NAME [args]`: run one benchmark; adding one is one line in BENCHMARKS."""

from __future__ import annotations

import importlib
import sys

# name -> module with a main(argv: list[str]) -> int
BENCHMARKS: dict[str, str] = {
    "batch": "bench.batch",
    "load": "bench.load",
    "reconcile": "bench.reconcile",
    "roster": "bench.roster",
}


def main(argv: list[str]) -> int:
    """Dispatch to the named benchmark's main()."""
    if not argv or argv[0] not in BENCHMARKS:
        names = ", ".join(sorted(BENCHMARKS))
        print(f"usage: python -m bench NAME [args]; NAME is one of: {names}", file=sys.stderr)
        return 2
    module = importlib.import_module(BENCHMARKS[argv[0]])
    return int(module.main(argv[1:]) or 0)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
