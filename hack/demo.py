"""`make demo`: the whole product on one machine, from nothing to a Work that succeeded.

1. starts the local Kubernetes control plane (building it on first use),
2. starts buckets on a SQLite file,
3. deposits a Work from Python, withdraws it and runs it with `workflow run`,
4. starts the operator and applies the examples/ Work manifests to the cluster,
5. shows each Work taken to success, with its results in the resource and in buckets.

Everything lives under .demo/ in the repository. With --keep the services stay
up (the script prints how to use and stop them); otherwise they are stopped.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import yaml
from rich.console import Console
from rich.live import Live
from rich.table import Table

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "hack"))

from localcluster import controlplane  # noqa: E402

DEMO = ROOT / ".demo"
NAMESPACE = "workflow-demo"
console = Console()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WORKFLOW_")}
    return {**env, **extra}


def start(name: str, argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    log = (DEMO / f"{name}.log").open("ab")
    return subprocess.Popen(
        argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
    )


def stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)


def wait_http(url: str, process: subprocess.Popen[bytes], log: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{log} exited early; see .demo/{log}.log")
        try:
            if httpx.get(url, timeout=1).status_code < 500:
                return
        except httpx.HTTPError:
            time.sleep(0.2)
    raise SystemExit(f"{url} did not answer within {timeout} s; see .demo/{log}.log")


def show(text: str) -> None:
    """Print a command's output as it is: rich's ``print`` would fold lines wider than the
    console (80 columns when not a terminal) into the next, and read ``[...]`` as markup."""
    console.out(text.rstrip("\n"), highlight=False)


def kubectl(kubeconfig: Path, *args: str, stdin: str | None = None) -> str:
    result = subprocess.run(
        ["kubectl", "--kubeconfig", str(kubeconfig), *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=120,
    )
    if result.returncode != 0:
        raise SystemExit(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def python_object_path(buckets_url: str) -> None:
    """Deposit, withdraw and run a Work the way scripts do, against buckets alone."""
    workspace = DEMO / "workspace.yml"
    workspace.write_text(
        yaml.safe_dump(
            {
                "workspace": "demo",
                "sites": ["local"],
                "http": {"baseurls": {"buckets": buckets_url}},
            }
        )
    )
    env = clean_env(WORKFLOW_WORKSPACE=str(workspace), WORKFLOW_HTTP_WORKSPACE=str(workspace))
    code = (
        "from workflow.definitions.work import Work\n"
        "work = Work(pipeline='demo-python', site='local', user='demo',\n"
        "            function='workflow.examples.functions.mean',\n"
        "            parameters={'values': [2, 4, 9]})\n"
        "print(work.deposit(return_ids=True)[0])\n"
    )
    work_id = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    ).stdout.strip()
    console.print(f"  deposited Work [bold]{work_id}[/] from Python")
    subprocess.run(
        [sys.executable, "-m", "workflow", "run", "demo-python", "--lives", "1"],
        env=env,
        check=True,
    )
    record = httpx.get(f"{buckets_url}/work/{work_id}", timeout=10).json()
    console.print(
        f"  `workflow run` withdrew and ran it: status [bold]{record['status']}[/], "
        f"results {record['results']}"
    )
    if record["status"] != "success":
        raise SystemExit("the Python-path Work did not succeed")


def watch(kubeconfig: Path, names: list[str], timeout: float = 240) -> dict[str, dict]:
    """Show the Works' phases live until every one has finished."""
    deadline = time.monotonic() + timeout
    works: dict[str, dict] = {}
    with Live(console=console, refresh_per_second=4) as live:
        while time.monotonic() < deadline:
            listed = json.loads(kubectl(kubeconfig, "-n", NAMESPACE, "get", "works", "-o", "json"))
            works = {item["metadata"]["name"]: item for item in listed["items"]}
            table = Table("Work", "Phase", "Attempt", "Message")
            for name in names:
                status = works.get(name, {}).get("status", {})
                table.add_row(
                    name,
                    status.get("phase", "-"),
                    str(status.get("attempt", 0)),
                    status.get("message", ""),
                )
            live.update(table)
            if all(
                works.get(n, {}).get("status", {}).get("phase") in ("success", "failure")
                for n in names
            ):
                break
            time.sleep(0.5)
        else:
            works = {}
    if not console.is_terminal:
        console.line()  # off a terminal, Live leaves its last line unterminated
    if works:
        return works
    raise SystemExit(f"the Works did not finish within {timeout} s; see .demo/operator.log")


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--keep", action="store_true", help="leave the cluster, buckets and operator running"
    )
    options = parser.parse_args()
    DEMO.mkdir(exist_ok=True)
    processes: list[subprocess.Popen[bytes]] = []
    cluster_root = DEMO / "cluster"
    try:
        console.rule("[bold]1/4[/] local Kubernetes control plane")
        info = controlplane.up(cluster_root, progress=lambda line: console.print(f"  {line}"))
        kubeconfig = info.kubeconfig

        console.rule("[bold]2/4[/] buckets on SQLite")
        port = free_port()
        buckets_url = f"http://127.0.0.1:{port}"
        database = DEMO / "buckets.sqlite3"
        buckets = start(
            "buckets",
            [sys.executable, "-m", "workflow", "buckets", "serve", "--port", str(port)],
            clean_env(WORKFLOW_BUCKETS_DATABASE=f"sqlite:///{database}"),
        )
        processes.append(buckets)
        wait_http(f"{buckets_url}/healthz", buckets, "buckets")
        console.print(f"  buckets at {buckets_url}, store {database.relative_to(ROOT)}")

        console.rule("[bold]3/4[/] a Work from Python: deposit, withdraw, run")
        python_object_path(buckets_url)

        console.rule("[bold]4/4[/] the operator runs Work manifests")
        kubectl(kubeconfig, "apply", "-f", str(ROOT / "crds" / "work.yaml"))
        kubectl(
            kubeconfig,
            "wait",
            "--for=condition=Established",
            "crd/works.workflow.dev",
            "--timeout=60s",
        )
        kubectl(
            kubeconfig,
            "apply",
            "-f",
            "-",
            stdin=kubectl(
                kubeconfig, "create", "namespace", NAMESPACE, "--dry-run=client", "-o", "yaml"
            ),
        )
        operator = start(
            "operator",
            [
                sys.executable,
                "-m",
                "workflow",
                "operator",
                "run",
                "-n",
                NAMESPACE,
                "--liveness",
                "",
            ],
            clean_env(
                KUBECONFIG=str(kubeconfig),
                WORKFLOW_OPERATOR_BUCKETS_URL=buckets_url,
                WORKFLOW_OPERATOR_RUNNER_COMMAND=json.dumps(
                    [sys.executable, "-m", "workflow", "run"]
                ),
            ),
        )
        processes.append(operator)
        examples = sorted((ROOT / "examples").glob("*-work.yaml"))
        names = [yaml.safe_load(path.read_text())["metadata"]["name"] for path in examples]
        for path in examples:
            kubectl(kubeconfig, "-n", NAMESPACE, "apply", "-f", str(path))
            console.print(f"  kubectl apply -f {path.relative_to(ROOT)}")
        works = watch(kubeconfig, names)
        show(kubectl(kubeconfig, "-n", NAMESPACE, "get", "works", "-o", "wide"))
        failed = [name for name in names if works[name]["status"]["phase"] != "success"]
        for name in names:
            status = works[name]["status"]
            record = httpx.get(f"{buckets_url}/work/{status['bucketsId']}", timeout=10).json()
            console.print(
                f"  [bold]{name}[/]: results in the Work {status.get('results')}; "
                f"in buckets: status {record['status']}, attempt {record['attempt']}"
            )
        if failed:
            console.print(f"[red]not successful: {failed}; see .demo/operator.log[/]")
            return 1
        console.print("[green bold]Every Work succeeded.[/]")
        if options.keep:
            console.print(
                f"\nStill running. Try:\n  {info.export_line()}\n"
                f"  kubectl -n {NAMESPACE} get works\n"
                f"Stop with: hack/cluster --dir {cluster_root} down (buckets pid {buckets.pid}, "
                f"operator pid {operator.pid})"
            )
            processes.clear()
        return 0
    finally:
        for process in reversed(processes):
            stop(process)
        if not options.keep:
            controlplane.down(cluster_root, progress=lambda line: console.print(f"  {line}"))


if __name__ == "__main__":
    sys.exit(main())
