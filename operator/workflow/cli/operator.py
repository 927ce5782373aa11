"""``workflow operator``: run the Kubernetes operator, and print the Work CRD."""

from __future__ import annotations

import click


@click.group("operator")
def operator() -> None:
    """The Kubernetes operator that runs Work resources as Jobs."""


@operator.command("run")
@click.option(
    "-n",
    "--namespace",
    "namespaces",
    multiple=True,
    help="Namespace to watch (repeatable). Default: WORKFLOW_OPERATOR_NAMESPACES, else all.",
)
@click.option(
    "--liveness",
    default="http://0.0.0.0:8080/healthz",
    show_default=True,
    help="Address of the liveness endpoint; empty to disable.",
)
@click.option(
    "-v",
    "--verbose",
    is_flag=True,
    help="Log at debug level: the operator's own records and kopf's "
    "(kopf's per-object handler records stay off).",
)
def run_operator(namespaces: tuple[str, ...], liveness: str, verbose: bool) -> None:
    """Watch Work resources and run them until they succeed or fail."""
    import kopf

    import workflow.controller.handlers  # noqa: F401  (registers the handlers)
    from workflow.controller.settings import OperatorSettings

    watched = list(namespaces) or OperatorSettings().namespaces
    kopf.configure(verbose=verbose)
    kopf.run(
        standalone=True,
        namespaces=watched,  # empty with clusterwide: kopf wants a collection, never None
        clusterwide=not watched,
        liveness_endpoint=liveness or None,
        memo=kopf.Memo(namespaces=watched),  # what the start-up handler reports
    )


@click.command("crd")
def crd() -> None:
    """Print the Work CustomResourceDefinition (as committed in crds/work.yaml)."""
    from workflow.controller.crd import render

    click.echo(render(), nl=False)
