"""The pytest plugin of arflow's rule coverage: ``pytest --arflow-coverage=PACKDIR``.

Installed with arflow (the ``pytest11`` entry point), or named with
``-p arflow.testing.plugin``. With the option, it watches every engine of the test
session (:func:`arflow.testing._coverage.watching`) and, at the end, lists the rules of
each pack named that no test made fire; ``--arflow-coverage-fail-under=PCT`` fails the
session when fewer than PCT percent of a pack's rules fired.
"""

from __future__ import annotations

from contextlib import ExitStack
from typing import Any

import pytest

__all__ = ["pytest_addoption", "pytest_configure"]


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("arflow", "arflow rule coverage")
    group.addoption(
        "--arflow-coverage",
        action="append",
        default=[],
        metavar="PACKDIR",
        help="report which rules of the pack at PACKDIR no test fired (may be repeated)",
    )
    group.addoption(
        "--arflow-coverage-fail-under",
        type=float,
        default=None,
        metavar="PCT",
        help="fail the session when fewer than PCT percent of a pack's rules fired",
    )


def pytest_configure(config: pytest.Config) -> None:
    paths: list[str] = config.getoption("arflow_coverage") or []
    if paths and config.pluginmanager.get_plugin("arflow-coverage") is None:
        config.pluginmanager.register(
            _Coverage(paths, config.getoption("arflow_coverage_fail_under")), "arflow-coverage"
        )


class _Coverage:
    """One session's rule coverage over the packs named on the command line."""

    def __init__(self, paths: list[str], fail_under: float | None) -> None:
        from ..errors import RuleLoadError
        from ._coverage import RuleCoverage

        try:
            self.packs = [RuleCoverage(p) for p in paths]
        except RuleLoadError as exc:
            raise pytest.UsageError(f"--arflow-coverage: {exc}") from None
        self.fail_under = fail_under
        self.failed: list[str] = []
        self._stack = ExitStack()

    def _observe(self, pack: Any, decisions: Any) -> None:
        for cov in self.packs:
            cov.observe(pack, decisions)

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionstart(self, session: pytest.Session) -> None:
        from ._coverage import watching

        self._stack.enter_context(watching(self._observe))

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        self._stack.close()
        if self.fail_under is None:
            return
        self.failed = [
            f"{cov.path}: {cov.percent:.0f}% of its rules fired, under "
            f"--arflow-coverage-fail-under={self.fail_under:g}"
            for cov in self.packs
            if cov.percent < self.fail_under
        ]
        if self.failed and session.exitstatus == pytest.ExitCode.OK:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED

    def pytest_terminal_summary(self, terminalreporter: Any) -> None:
        terminalreporter.write_sep("-", "arflow rule coverage")
        for cov in self.packs:
            for line in cov.report():
                terminalreporter.write_line(line)
        for line in self.failed:
            terminalreporter.write_line(f"FAIL: {line}", red=True)
