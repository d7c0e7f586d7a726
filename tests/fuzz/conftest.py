"""Hypothesis profiles of the reader fuzz tests, and the per-reader tally printed at the end.

Two tiers: the default ("ci") runs a few dozen inputs per strategy and reader, a few hundred per reader in
all, in well under a minute; the slow tier (``-m slow``, profile "slow") runs >= 10,000 inputs per reader.
Both turn the example database off (the tests must leave no files in the tree) and the per-example
deadline off (file sizes and first-call imports make timings vary; the contract has its own deadline).

Tests take a tier with ``@settings(settings.get_profile("ci"))``. ``FUZZ_EXAMPLES=<n>`` overrides the
default tier's count for a one-off larger run.
"""
import os

from hypothesis import HealthCheck, Phase, settings

# No "explain" phase: it traces every line the test runs in this process (the mutators), which on a
# failing input costs minutes and gigabytes; the contract's report already says what went wrong.
_PHASES = [Phase.explicit, Phase.reuse, Phase.generate, Phase.target, Phase.shrink]
_CHECKS = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
           HealthCheck.function_scoped_fixture, HealthCheck.large_base_example]
settings.register_profile("ci", max_examples=int(os.environ.get("FUZZ_EXAMPLES", 40)), deadline=None,
                          database=None, suppress_health_check=_CHECKS, derandomize=True, print_blob=True, phases=_PHASES)
settings.register_profile("slow", max_examples=int(os.environ.get("FUZZ_SLOW_EXAMPLES", 10_000)),
                          deadline=None, database=None, suppress_health_check=_CHECKS, print_blob=True,
                          phases=_PHASES)


def pytest_terminal_summary(terminalreporter):
    """One line per fuzzed reader: inputs tried, loaded, refused (by error type)."""
    from .harness import SUMMARIES
    if SUMMARIES:
        terminalreporter.section("reader fuzzing")
        for contract in SUMMARIES:
            terminalreporter.line(contract.summary())
