"""The one percentile definition every bench script uses (see docs/benchmarks.md).

Imported as ``from stats import percentile``: each bench script puts bench/ on sys.path, so
this works when a script is run as ``python bench/X.py``.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile of ``values``, q in percent (0-100, a whole number: 50, 95).

    Python's ``statistics.quantiles(values, n=100, method="inclusive")``: linear interpolation
    between the closest ranks, position (len(values) - 1) * q / 100 in the sorted values (the
    same as numpy's default). q=0 is the minimum, q=100 the maximum; a single value is every
    percentile of itself; q=50 equals ``statistics.median``.
    """
    if not values:
        raise ValueError("percentile of no values")
    if not 0 <= q <= 100 or q != int(q):
        raise ValueError(f"percentile q must be a whole number of percent, 0-100, not {q!r}")
    q = int(q)
    if len(values) == 1:
        return float(values[0])
    if q == 0:
        return float(min(values))
    if q == 100:
        return float(max(values))
    return float(statistics.quantiles(values, n=100, method="inclusive")[q - 1])
