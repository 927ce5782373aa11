"""``python -m bench``: run every benchmark, write ``bench/results/<name>.json``, update the table.

Options: ``--quick`` for a smoke run of a few seconds each, ``--only a,b``
to run some, ``--results DIR`` to write elsewhere (the smoke test does), and
``--no-readme`` to leave ``bench/README.md`` alone. The README table is
rebuilt from every JSON file in the results folder, so running one
benchmark updates its rows and keeps the others. Quick runs, and runs
writing elsewhere than ``bench/results``, never touch the README. A
benchmark that fails is reported and the others still run; the exit status
is then 1.
"""

from __future__ import annotations

import argparse
import importlib
import json
import shutil
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from bench.harness import RESULTS, ROOT, Options, say, use_repo_paths, write_report

#: Run order: the buckets benchmarks first (seconds each), then the cluster ones (minutes).
BENCHMARKS = (
    "buckets_deposit",
    "buckets_withdraw",
    "client_compat",
    "buckets_scale",
    "operator_throughput",
    "operator_scale",
    "buckets_running",
    "realnode_throughput",
)
README = ROOT / "bench" / "README.md"
BEGIN, END = "<!-- results:begin -->", "<!-- results:end -->"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smoke run of a few seconds each")
    parser.add_argument(
        "--only", default="", help=f"comma-separated subset of: {', '.join(BENCHMARKS)}"
    )
    parser.add_argument("--results", type=Path, default=RESULTS, help="folder for the JSON results")
    parser.add_argument("--no-readme", action="store_true", help="do not update bench/README.md")
    arguments = parser.parse_args(argv)
    chosen = [name for name in arguments.only.split(",") if name] or list(BENCHMARKS)
    unknown = [name for name in chosen if name not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)}; known: {', '.join(BENCHMARKS)}")
    use_repo_paths()
    failed = []
    for name in chosen:
        workdir = Path(tempfile.mkdtemp(prefix=f"workflow-bench-{name}-"))
        began = time.monotonic()
        try:
            module = importlib.import_module(f"bench.{name}")
            report = module.run(Options(quick=arguments.quick, workdir=workdir))
            report.seconds = time.monotonic() - began
            path = write_report(report, arguments.results)
            say(f"{name}: done in {report.seconds:.0f} s; wrote {path}")
        except Exception:
            failed.append(name)
            say(f"{name}: FAILED\n{traceback.format_exc()}")
        finally:
            shutil.rmtree(workdir, ignore_errors=True)
    # The README quotes bench/results only: results written elsewhere are not its figures.
    if not arguments.quick and not arguments.no_readme and arguments.results == RESULTS:
        update_readme(arguments.results)
    if failed:
        say(f"failed: {', '.join(failed)}")
        return 1
    return 0


def _number(value: float | None, unit: str = "") -> str:
    if value is None:
        return "-"
    if float(value).is_integer() or abs(value) >= 100:
        return f"{value:,.0f}"
    if abs(value) >= 10:
        return f"{value:.1f}"
    return f"{value:.2f}"


def _share(ratio: float | None, unit: str) -> str:
    """A ratio to its ceiling: a share for rates, a multiple for latencies (a floor)."""
    if ratio is None:
        return "-"
    return f"{ratio:.1f}x" if unit == "ms" else f"{ratio:.0%}"


def table(results: Path) -> str:
    """The Markdown table of every report in ``results``."""
    rows = [
        "| benchmark | figure | value | same-run ceiling | ratio | target | met |",
        "|---|---|---|---|---|---|---|",
    ]
    commands = []
    for name in BENCHMARKS:
        path = results / f"{name}.json"
        if not path.exists():
            continue
        report: dict[str, Any] = json.loads(path.read_text())
        when = report["started"][:16].replace("T", " ")
        load = "/".join(str(value) for value in report["machine"]["load_average"])
        commands.append(
            f"- {report['title']}: `{report['command']}` "
            f"({when} UTC, {report['seconds']:.0f} s, load average at the end {load})"
        )
        for figure in report["figures"]:
            ceiling = (
                f"{_number(figure['ceiling'], figure['unit'])} ({figure['ceiling_name']})"
                if figure.get("ceiling") is not None
                else "-"
            )
            share = _share(figure.get("ratio"), figure["unit"])
            met = {True: "yes", False: "**no**", None: ""}[figure.get("met")]
            value = f"{_number(figure['value'], figure['unit'])} {figure['unit']}"
            target = figure.get("target") or ""
            cells = [report["title"], figure["name"], value, ceiling, share, target, met]
            rows.append("| " + " | ".join(cells) + " |")
    return "\n".join(rows) + "\n\nProduced by:\n\n" + "\n".join(commands) + "\n"


def update_readme(results: Path) -> None:
    text = README.read_text() if README.exists() else f"# Benchmarks\n\n{BEGIN}\n{END}\n"
    if BEGIN not in text or END not in text:
        text += f"\n{BEGIN}\n{END}\n"
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    README.write_text(f"{head}{BEGIN}\n{table(results)}{END}{tail}")
    say(f"updated {README}")


if __name__ == "__main__":
    sys.exit(main())
