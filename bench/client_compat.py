"""Benchmark 3: the public ``workflow-core`` client's withdraw loop against our server.

Existing users run workers written with ``workflow-core==1.12.3``, whose
every call opens a new TCP connection and goes through ``requests``. Here 1
and 4 such workers (separate processes, as users run them; in-process
threads would share the client's one session) withdraw from a queue of
20,000 works over the 10 benchmark pipelines for a few seconds, the way the
client's own ``workflow run`` loop does (one ``HTTPContext`` passed to every
``Work.withdraw``); one more run shows a naive script that passes none, so
that every call also builds a context (which probes ``HEAD /version``). The same-run
ceiling is the same number of kept-alive clients withdrawing the same works
from the same server (``bench.buckets_withdraw``'s client), so the ratio is
what the public client's connection-per-call costs. The virtualenv is the
one the compatibility tests build (created here the same way if missing).
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from bench import buckets_withdraw, services, workload
from bench.harness import (
    ROOT,
    Figure,
    Options,
    Report,
    median,
    percentile,
    phase,
    say,
    usage,
    use_repo_paths,
)

NAME = "client_compat"
TITLE = "workflow-core client withdraw loop (works/s)"
WORKERS = (1, 4)
#: (mode, workers): ``workflow run``'s loop (one HTTPContext) at each count; a naive script once.
RUNS = (("loop", 1), ("loop", 4), ("naive", 1))
LABELS = {"loop": "run loop (one HTTPContext)", "naive": "Work.withdraw() without http="}
SCRIPT = ROOT / "bench" / "scripts" / "workflow_core_withdraw.py"


def workflow_core_python() -> Path:
    """The compatibility tests' virtualenv with the public client (built if missing)."""
    use_repo_paths()
    from fixtures import upstream

    folder = upstream.cache_folder() / (
        f"workflow-core-{upstream.VERSION}-py{sys.version_info[0]}{sys.version_info[1]}"
    )
    return upstream._create(folder)


def run(options: Options) -> Report:
    report = Report(NAME, TITLE, options.command(NAME), options.quick)
    seconds = options.pick(5.0, 0.5)
    trials = options.pick(3, 1)
    queued = options.pick(20_000, 2_000)
    python = workflow_core_python()
    report.details.update(seconds_per_run=seconds, runs=trials, queued=queued, workers=WORKERS)
    queue = workload.stored(workload.documents(queued))
    with services.postgres() as pg:
        for store in ("sqlite", "postgres"):
            if store == "sqlite":
                database = str(options.workdir / "compat.sqlite3")
            else:
                database = pg.create_database("bench_compat")
            with services.buckets(store, database, options.workdir) as server:
                workspace = options.workdir / f"workspace-{store}.yml"
                workspace.write_text(
                    yaml.safe_dump(
                        {
                            "workspace": "bench",
                            "sites": ["local"],
                            "http": {"baseurls": {"buckets": server.url}},
                        }
                    )
                )
                for mode, workers in RUNS:
                    with phase(f"workflow-core {mode} {store} x{workers}"):
                        _measure(
                            report,
                            python,
                            server,
                            store,
                            database,
                            mode,
                            workers,
                            workspace,
                            queue,
                            seconds,
                            trials,
                            options.workdir,
                        )
    return report


def _measure(
    report: Report,
    python: Path,
    server: services.Buckets,
    store: str,
    database: str,
    mode: str,
    workers: int,
    workspace: Path,
    queue: list[dict[str, Any]],
    seconds: float,
    trials: int,
    workdir: Path,
) -> None:
    rates, ceilings, p99s, server_ms, duplicates = [], [], [], [], 0
    limit = int(len(queue) * 0.75)
    for _ in range(trials):
        server.reset()
        services.fill(store, database, queue)
        cpu_before = usage(server.pid).cpu
        ids, latencies, rate = _public(python, mode, workers, workspace, seconds, workdir)
        server_ms.append((usage(server.pid).cpu - cpu_before) / max(1, len(ids)) * 1000)
        duplicates += len(ids) - len(set(ids))
        rates.append(rate)
        p99s.append(percentile(latencies, 0.99) * 1000)
        server.reset()
        services.fill(store, database, queue)
        outcome = asyncio.run(buckets_withdraw._http(server.url, workers, seconds, limit))
        ceilings.append(outcome.rate)
        say(
            f"  {store} {mode} x{workers}: workflow-core {rate:.0f}/s, "
            f"kept-alive {ceilings[-1]:.0f}/s"
        )
    server.reset()
    report.add(
        Figure(
            name=f"workflow-core {LABELS[mode]} {store} x{workers}",
            value=median(rates),
            unit="works/s",
            ceiling=median(ceilings),
            ceiling_name="kept-alive HTTP client",
            runs=rates,
            ratios=[r / c for r, c in zip(rates, ceilings, strict=True) if c],
            note=f"p99 {median(p99s):.1f} ms; duplicates {duplicates}; server CPU "
            f"{median(server_ms):.2f} ms per claimed work (whole run, imports included)",
        )
    )


def _public(
    python: Path, mode: str, workers: int, workspace: Path, seconds: float, workdir: Path
) -> tuple[list[str], list[float], float]:
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("WORKFLOW_", "PYTHON")) and key not in ("GITHUB_TOKEN", "GITHUB_PAT")
    }
    home = workdir / "home"
    home.mkdir(exist_ok=True)
    env.update(
        HOME=str(home), WORKFLOW_WORKSPACE=str(workspace), WORKFLOW_HTTP_WORKSPACE=str(workspace)
    )
    begin = time.time() + 4.0  # every worker has imported the client by then
    argv = [str(python), str(SCRIPT), mode, f"{begin}", f"{seconds}", *workload.pipeline_names()]
    processes = [
        subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=workdir)
        for _ in range(workers)
    ]
    ids: list[str] = []
    latencies: list[float] = []
    elapsed = []
    for process in processes:
        try:
            out, err = process.communicate(timeout=seconds + 120)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            raise RuntimeError("a workflow-core worker did not finish in time") from None
        if process.returncode != 0:
            raise RuntimeError(f"workflow-core worker failed:\n{err.decode()[-2000:]}")
        seen = json.loads(out.decode().strip().splitlines()[-1])
        ids += seen["ids"]
        latencies += seen["latencies"]
        elapsed.append(seen["seconds"])
    return ids, latencies, len(ids) / max(elapsed)
