"""`--fail-if` thresholds: parse `[TEST:]METRIC OP NUMBER` and check result rows. Pure.

`p99_ms>5` fails when any test's p99 exceeds 5 ms; `get:ops_per_sec<50000` only looks at the
`get` row. A metric that was not measured (null in the row) counts as a breach: a CI gate must
not pass on nothing.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

OPERATORS: dict[str, Callable[[float, float], bool]] = {
    ">=": operator.ge, "<=": operator.le, "!=": operator.ne, "==": operator.eq,
    ">": operator.gt, "<": operator.lt, "=": operator.eq,
}
_PATTERN = re.compile(r"^\s*(?:(?P<test>[A-Za-z0-9_.\-/]+)\s*:\s*)?(?P<metric>[a-z0-9_]+)\s*"
                      r"(?P<op>>=|<=|!=|==|>|<|=)\s*(?P<limit>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*$")


class ThresholdError(ValueError):
    """A threshold that cannot be parsed or names something that does not exist; str() says why."""


@dataclass(frozen=True)
class Threshold:
    text: str
    test: str | None
    metric: str
    op: str
    limit: float

    def applies_to(self, row: Mapping[str, Any]) -> bool:
        return self.test is None or self.test == row.get("test")

    def breached_by(self, value: Any) -> bool:
        """True when `value` crosses the limit or is missing."""
        if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
            return True
        return OPERATORS[self.op](float(value), self.limit)


def parse(text: str, metrics: Iterable[str], tests: Iterable[str]) -> Threshold:
    """One threshold, checked against the metrics rows have and the tests that will run."""
    match = _PATTERN.match(text)
    if not match:
        raise ThresholdError(f"cannot read threshold {text!r}: expected [TEST:]METRIC OP NUMBER, "
                             "like 'p99_ms>5' or 'get:ops_per_sec<50000'")
    metric, test = match["metric"], match["test"]
    known = list(metrics)
    if metric not in known:
        raise ThresholdError(f"unknown metric {metric!r} in threshold {text!r}; metrics: {', '.join(known)}")
    test_names = list(tests)
    if test is not None and test not in test_names:
        raise ThresholdError(f"threshold {text!r} names test {test!r}, which is not run; tests: "
                             f"{', '.join(test_names)}")
    return Threshold(text=text.strip(), test=test, metric=metric, op=match["op"], limit=float(match["limit"]))


def evaluate(rows: list[dict[str, Any]], thresholds: list[Threshold]) -> list[dict[str, Any]]:
    """One check per (threshold, row it applies to): {threshold, test, metric, value, breached}.
    Also sets each row's `breaches` to the texts of the thresholds it breached."""
    checks = []
    for row in rows:
        row["breaches"] = []
    for threshold in thresholds:
        for row in rows:
            if not threshold.applies_to(row):
                continue
            value = row.get(threshold.metric)
            breached = threshold.breached_by(value)
            checks.append({"threshold": threshold.text, "test": row.get("test"), "metric": threshold.metric,
                           "value": value, "breached": breached})
            if breached:
                row["breaches"].append(threshold.text)
    return checks
