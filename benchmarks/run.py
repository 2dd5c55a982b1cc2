"""Entry point of `batchhub bench SUITE [--quick]`."""

import sys

SUITES = {"core": "benchmarks.core", "parallel": "benchmarks.parallel", "hub": "benchmarks.hub",
          "sched": "benchmarks.sched_sim", "memory": "benchmarks.controller_memory",
          "priority": "benchmarks.priority_bench", "crash": "benchmarks.crash_load", "restart": "benchmarks.restart",
          "flood": "benchmarks.flood"}


def main(suite, extra=()):
    import importlib
    module = importlib.import_module(SUITES[suite])
    return module.main(list(extra))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2:]))
