"""Sample functions a Work can name, e.g. ``function: workflow.examples.functions.mean``.

Each shows one way a function reports back to the runner: a dict of results,
a tuple ``(results, products, plots)``, a slow call that meets its timeout,
or an error. They use only the standard library, so any image that has the
``workflow`` package can run them.
"""

from __future__ import annotations

import math
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any


def add(a: float, b: float) -> dict[str, float]:
    """``{"sum": a + b}``."""
    return {"sum": a + b}


def mean(values: list[float]) -> dict[str, Any]:
    """The mean and standard deviation of ``values`` (which must not be empty)."""
    if not values:
        raise ValueError("mean needs at least one value")
    return {
        "mean": statistics.fmean(values),
        "stdev": statistics.stdev(values) if len(values) > 1 else 0.0,
        "count": len(values),
    }


def echo(**parameters: Any) -> dict[str, Any]:
    """Its parameters, unchanged: shows exactly what reached the function."""
    return {"parameters": parameters}


def sleep(seconds: float) -> dict[str, float]:
    """Wait ``seconds``, then report how long it actually slept."""
    started = time.monotonic()
    time.sleep(seconds)
    return {"slept": round(time.monotonic() - started, 3)}


def fail(message: str = "this function always fails") -> None:
    """Raise ``RuntimeError(message)``: a Work that fails on purpose."""
    raise RuntimeError(message)


def histogram(
    values: list[float], bins: int = 10, folder: str | None = None
) -> tuple[dict[str, Any], list[str], list[str]]:
    """Count ``values`` in ``bins`` equal bins; write the counts as CSV and an SVG bar chart.

    Returns ``(results, products, plots)``: the counts, the CSV's path and the
    SVG's path, both written to ``folder`` (a new temporary folder by default).
    """
    if not values:
        raise ValueError("histogram needs at least one value")
    if bins < 1:
        raise ValueError(f"bins must be 1 or more, not {bins}")
    low, high = min(values), max(values)
    width = (high - low) / bins or 1.0
    counts = [0] * bins
    for value in values:
        counts[min(int((value - low) / width), bins - 1)] += 1
    edges = [low + index * width for index in range(bins + 1)]

    where = Path(folder) if folder else Path(tempfile.mkdtemp(prefix="histogram-"))
    where.mkdir(parents=True, exist_ok=True)
    table = where / "histogram.csv"
    table.write_text(
        "low,high,count\n"
        + "".join(f"{edges[i]:g},{edges[i + 1]:g},{counts[i]}\n" for i in range(bins))
    )
    chart = where / "histogram.svg"
    tallest = max(counts)
    bars = "".join(
        f'<rect x="{i * 20}" y="{100 - math.ceil(100 * count / tallest)}" width="18" '
        f'height="{math.ceil(100 * count / tallest)}"/>'
        for i, count in enumerate(counts)
    )
    chart.write_text(
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{bins * 20}" height="100">{bars}</svg>\n'
    )
    results = {"counts": counts, "edges": edges, "total": len(values)}
    return results, [str(table)], [str(chart)]
