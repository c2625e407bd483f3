"""Metric failures are counted by reason and reported, never passed off as bad samples.

A fingerprint or validity check that raises (an API change in matminer or smact, a structure a
library cannot measure) scores that sample as a failure, as the protocol asks; but the JSON of
the evaluation also carries ``metric_errors`` (reason -> count), and the first failure of each
kind is logged as a warning, so a broken library cannot hide behind low figures.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager

logger = logging.getLogger(__name__)

_open: list[Counter] = []  # counters of the evaluations in progress (innermost last)
_warned: set[tuple[str, str]] = set()


def record(metric: str, exc: BaseException) -> None:
    """Count one failure of ``metric``; warn the first time each (metric, exception type) occurs."""
    lines = str(exc).strip().splitlines()
    reason = f"{metric}: {type(exc).__name__}: {lines[0][:120] if lines else ''}".rstrip(": ")
    for counter in _open:
        counter[reason] += 1
    if (metric, type(exc).__name__) not in _warned:
        _warned.add((metric, type(exc).__name__))
        logger.warning("%s (first of its kind; counted in metric_errors)", reason)


@contextmanager
def counting() -> Iterator[Counter]:
    """Collect the failures recorded inside the block: ``with counting() as errors: ...``."""
    counter: Counter = Counter()
    _open.append(counter)
    try:
        yield counter
    finally:
        _open.remove(counter)
