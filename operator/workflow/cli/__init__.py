"""The ``workflow`` command line: one group, one module per topic."""

import click

from workflow import __version__
from workflow.cli.buckets import buckets
from workflow.cli.operator import crd, operator
from workflow.cli.run import run


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="workflow")
def main() -> None:
    """Run scientific and operational Work: the buckets queue, the runner and the operator."""


main.add_command(buckets)
main.add_command(crd)
main.add_command(operator)
main.add_command(run)

__all__ = ["buckets", "crd", "main", "operator", "run"]
