"""The ``wgops`` command line: one module per command group, registered on the root group of
:mod:`wgops.console.cli.base`.

Errors are one line on stderr and an exit code (DESIGN §6): 2 bad usage or invalid input,
3 broker or database unreachable, 1 a ``--wait`` that ended in another state than finished,
4 an internal error (``--debug`` shows its traceback).
"""

from __future__ import annotations

import sys

import click

from wgops.console.cli.base import cli
from wgops.console.cli.output import one_line


def main() -> None:
    # importing a command module registers its commands
    from wgops.console.cli import (  # noqa: F401
        console,
        daemon,
        dead,
        demo,
        doctor,
        graph,
        logs,
        metrics,
        ops,
        prune,
        setup,
    )

    try:
        code = cli.main(prog_name="wgops", standalone_mode=False)
    except click.UsageError as exc:
        hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx else ""
        click.echo(f"wgops: error: {one_line(exc.format_message())}{hint}", err=True)
        code = exc.exit_code
    except click.ClickException as exc:
        click.echo(f"wgops: error: {one_line(exc.format_message())}", err=True)
        code = exc.exit_code
    except click.Abort:
        click.echo("wgops: error: aborted", err=True)
        code = 130
    sys.exit(code if isinstance(code, int) else 0)
