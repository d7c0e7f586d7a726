"""Hypothesis profiles of the reader fuzz tests, and the per-reader tally printed at the end.

Two tiers: the default ("ci") runs FUZZ_PER_READER inputs per reader (200 unless set), shared out among the
tests of that reader by ``ci_share(n_tests)``, in about a minute and a half on 2 cores; the slow tier
(``-m slow``, profile "slow") runs FUZZ_SLOW_PER_READER (10,000 unless set) inputs per reader, one test each.
Both turn the example database off (the tests must leave no files in the tree) and the per-example
deadline off (file sizes and first-call imports make timings vary; the contract has its own deadline).

For a slow-tier run on a busy machine, FUZZ_BUDGET_S=<s> caps the seconds spent per reader (the summary says
how many drawn inputs were not run) and FUZZ_PROGRESS=<path> appends the running tally there every 250 inputs.

Tests take a tier with ``@settings(harness.ci_share(n))`` (n: how many default-tier tests fuzz the same reader) or
``@settings(settings.get_profile("slow"))``.
"""
import os

from hypothesis import HealthCheck, Phase, settings

# No "explain" phase: it traces every line the test runs in this process (the mutators), which on a
# failing input costs minutes and gigabytes; the contract's report already says what went wrong.
_PHASES = [Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink]
_CHECKS = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
           HealthCheck.function_scoped_fixture, HealthCheck.large_base_example]
PER_READER = int(os.environ.get("FUZZ_PER_READER", 200))
SLOW_PER_READER = int(os.environ.get("FUZZ_SLOW_PER_READER", 10_000))
settings.register_profile("ci", max_examples=PER_READER, deadline=None, database=None, suppress_health_check=_CHECKS,
                          derandomize=True, print_blob=True, phases=_PHASES)
settings.register_profile("slow", max_examples=SLOW_PER_READER,
                          deadline=None, database=None, suppress_health_check=_CHECKS, print_blob=True,
                          phases=_PHASES)


def pytest_terminal_summary(terminalreporter):
    """One line per fuzzed reader: inputs tried, loaded, refused (by error type)."""
    from .harness import SUMMARIES
    if SUMMARIES:
        terminalreporter.section("reader fuzzing")
        for contract in SUMMARIES:
            terminalreporter.line(contract.summary())
