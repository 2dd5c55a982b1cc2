"""Entry point of `batchhub bench SUITE [--quick]`."""

import sys

SUITES = {"core": "benchmarks.core", "parallel": "benchmarks.parallel", "hub": "benchmarks.hub",
          "crash": "benchmarks.crash_load", "restart": "benchmarks.restart"}


def main(suite, extra=()):
    import importlib
    module = importlib.import_module(SUITES[suite])
    return module.main(list(extra))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
