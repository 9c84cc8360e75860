"""In-order scoreboard: compares the beats a DUT produced with the expected ones."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable

__all__ = ["Scoreboard"]


class Scoreboard:
    """Checks that actual items equal the expected ones, in order, each exactly once.

    Usage::

        sb = Scoreboard("results", dut._log, formatter=lambda w: str(decode(w)))
        sb.expect(golden_beats)
        monitor = StreamMonitor(dut, "results", dut.clk, callback=sb.check)   # incremental, or
        sb.compare(monitor.values)                                             # all at once
        sb.assert_done(len(golden_beats))

    Parameters
    ----------
    name : str
        Shown in every message.
    log : logging.Logger, optional
        Gets a summary line from :meth:`assert_done`.
    formatter : callable, optional
        ``item -> str`` shown next to the raw value in mismatch messages (e.g. decoded result words).

    Attributes
    ----------
    matched : int
        Items checked so far (all matched; the first mismatch raises).

    Raises
    ------
    AssertionError
        On a mismatch, an unexpected extra item, or a wrong final count; the message names the index,
        the expected and the actual item.
    """

    def __init__(self, name: str, log: logging.Logger | None = None,
                 formatter: Callable[[object], str] | None = None) -> None:
        self.name = name
        self.log = log or logging.getLogger(f"sparsegen.scoreboard.{name}")
        self.formatter = formatter
        self.expected: list = []
        self.matched = 0

    def _show(self, item) -> str:
        raw = f"{item:#x}" if isinstance(item, int) and not isinstance(item, bool) else repr(item)
        return f"{raw} ({self.formatter(item)})" if self.formatter is not None else raw

    def expect(self, items: Iterable) -> None:
        """Append ``items`` to the expected sequence."""
        self.expected.extend(items)

    def check(self, actual) -> None:
        """Compare the next actual item with the next expected one."""
        index = self.matched
        if index >= len(self.expected):
            raise AssertionError(f"{self.name}: unexpected extra item #{index} (only {len(self.expected)} "
                                 f"expected): {self._show(actual)}")
        expected = self.expected[index]
        if actual != expected:
            raise AssertionError(f"{self.name}: mismatch at index {index}:\n  expected {self._show(expected)}\n"
                                 f"  actual   {self._show(actual)}")
        self.matched += 1

    def compare(self, actual: Iterable) -> None:
        """:meth:`check` every item of ``actual`` in order (continuing after items already checked)."""
        for item in actual:
            self.check(item)

    @property
    def pending(self) -> int:
        """Expected items not seen yet."""
        return len(self.expected) - self.matched

    def assert_done(self, expected_count: int | None = None) -> None:
        """Assert that exactly ``expected_count`` items (default: all expected ones) arrived and matched."""
        count = len(self.expected) if expected_count is None else expected_count
        if count != len(self.expected):
            raise AssertionError(f"{self.name}: {len(self.expected)} items were expected, "
                                 f"but assert_done({count}) asks for {count}")
        if self.matched != count:
            first = self._show(self.expected[self.matched])
            raise AssertionError(f"{self.name}: {count - self.matched} of {count} expected items missing; "
                                 f"first missing is #{self.matched}: {first}")
        self.log.info("%s: all %d items matched", self.name, count)
