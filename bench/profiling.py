"""Profile a buckets server under a benchmark's load with py-spy (not part of ``python -m bench``).

``python -m bench.profiling withdraw|deposit|status [--store postgres] [--clients 8]
[--seconds 10] [--out FILE]`` starts PostgreSQL (when asked) and a buckets
server as the benchmarks do, applies the load, and records the server
process with ``py-spy record --format raw`` (collapsed stacks; py-spy is
found on ``PATH`` or in ``$PY_SPY``; install it with ``pip install py-spy``).
It then prints the functions with the most samples, inclusive and
exclusive, so a profile can be read without a browser.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from bench import buckets_deposit, buckets_withdraw, load, services, workload
from bench.harness import say, use_repo_paths


def summarize(path: Path, top: int = 25) -> str:
    """The busiest functions of a collapsed-stack profile, inclusive and exclusive."""
    inclusive: collections.Counter[str] = collections.Counter()
    exclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        samples = int(count)
        total += samples
        frames = [
            frame.split(" (")[0] + " " + frame.split("/")[-1].rstrip(")")
            for frame in stack.split(";")
        ]
        for frame in set(frames):
            inclusive[frame] += samples
        exclusive[frames[-1]] += samples
    lines = [f"{total} samples", "inclusive:"]
    lines += [f"  {count / total:6.1%}  {frame}" for frame, count in inclusive.most_common(top)]
    lines += ["exclusive:"]
    lines += [f"  {count / total:6.1%}  {frame}" for frame, count in exclusive.most_common(top)]
    return "\n".join(lines)


async def _load(kind: str, url: str, clients: int, seconds: float) -> load.Outcome:
    if kind == "withdraw":
        return await buckets_withdraw._http(url, clients, seconds, 10**9)
    if kind == "deposit":
        bodies = [workload.body(workload.documents(100)) for _ in range(4)]
        return await buckets_deposit._http(url, bodies, 100, seconds)
    async with load.session(clients) as http:

        async def call(client: int) -> None:
            await load.get(http, f"{url}/status")

        return await load.drive(clients, call, seconds=seconds)


def main() -> None:
    parser = argparse.ArgumentParser(
        prog="python -m bench.profiling", description=__doc__.splitlines()[0]
    )
    parser.add_argument("load", choices=("withdraw", "deposit", "status"))
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="postgres")
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--queued", type=int, default=40_000)
    parser.add_argument("--out", type=Path, default=Path("profile.txt"))
    arguments = parser.parse_args()
    use_repo_paths()
    spy = os.environ.get("PY_SPY") or shutil.which("py-spy")
    if not spy:
        raise SystemExit("py-spy not found: pip install py-spy, or set PY_SPY")
    workdir = Path(tempfile.mkdtemp(prefix="workflow-bench-profile-"))
    with services.postgres() as pg:
        database = (
            str(workdir / "profile.sqlite3")
            if arguments.store == "sqlite"
            else pg.create_database("bench_profile")
        )
        with services.buckets(arguments.store, database, workdir) as server:
            if arguments.load == "withdraw":
                services.fill(
                    arguments.store, database, workload.stored(workload.documents(arguments.queued))
                )
            recorder = subprocess.Popen(
                [
                    spy,
                    "record",
                    "--pid",
                    str(server.pid),
                    "--duration",
                    str(int(arguments.seconds)),
                    "--rate",
                    "200",
                    "--format",
                    "raw",
                    "--output",
                    str(arguments.out),
                    "--nonblocking",
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
            )
            outcome = asyncio.run(
                _load(arguments.load, server.url, arguments.clients, arguments.seconds)
            )
            recorder.wait(timeout=arguments.seconds + 60)
            say(f"{arguments.load}: {outcome.rate:.0f}/s, p99 {outcome.p99_ms:.1f} ms")
    shutil.rmtree(workdir, ignore_errors=True)
    print(json.dumps({"rate": outcome.rate, "p99_ms": outcome.p99_ms}))
    print(summarize(arguments.out))


if __name__ == "__main__":
    main()
