"""The root of the ``wgops`` command line: the click group, what every command gets
(:class:`AppContext`) and how errors become one line and an exit code.

Errors are one line on stderr and an exit code (DESIGN §6): 2 bad usage or invalid input,
3 broker or database unreachable, 1 a ``--wait`` that ended in another state than finished,
4 an internal error (``--debug`` shows its traceback).
"""

from __future__ import annotations

import asyncio
import logging
import sys
import warnings
from collections.abc import Coroutine
from typing import TYPE_CHECKING, Any, TypeVar

import click

from wgops.console.cli.output import one_line
from wgops.store.config import Settings
from wgops.store.db import Store, open_store
from wgops.store.errors import WgopsError
from wgops.store.targets import MovedTargetWarning

if TYPE_CHECKING:
    from wgops.client import Client

T = TypeVar("T")
INTERNAL_ERROR = 4


class AppContext:
    """What every command needs: settings (loaded once, lazily), the store, and the API
    client (:class:`wgops.Client`, closed when the command ends) that the graph and pool
    commands go through."""

    def __init__(self, debug: bool, home: str | None):
        self.debug = debug
        self.home = home
        self._settings: Settings | None = None
        self._client: Client | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = Settings.load(home=self.home)
        return self._settings

    def store(self, migrate: bool = True) -> Store:
        from wgops.store.migrations import migrate as run_migrations

        store = open_store(self.settings.db_url).connect()
        if migrate:
            run_migrations(store)
        return store

    def client(self) -> Client:
        if self._client is None:
            from wgops.client import Client

            self._client = click.get_current_context().with_resource(
                Client(settings=self.settings, actor="cli"))
        return self._client

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run(coro)


def fail(message: str, code: int = 2) -> "click.exceptions.Exit":
    click.echo(f"wgops: error: {one_line(message)}", err=True)
    return click.exceptions.Exit(code)


class Group(click.Group):
    """Turns every error into one line and an exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        debug = "--debug" in sys.argv
        try:
            return super().invoke(ctx)
        except WgopsError as exc:
            if debug:
                raise
            raise fail(str(exc), exc.exit_code) from None
        except (click.exceptions.Exit, click.exceptions.Abort, click.ClickException):
            raise
        except KeyboardInterrupt:
            raise fail("interrupted", 130) from None
        except Exception as exc:  # noqa: BLE001 - the one place that reports the unexpected
            if debug:
                raise
            raise fail(f"internal error: {type(exc).__name__}: {exc} (run with --debug for "
                       "the traceback)", INTERNAL_ERROR) from None


@click.group(cls=Group, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--home", envvar="WGOPS_HOME", type=click.Path(file_okay=False),
              help="Installation directory (config, SQLite database, circus endpoints, logs).")
@click.option("--debug", is_flag=True, help="Show tracebacks and debug logs.")
@click.version_option(package_name="wgops")
@click.pass_context
def cli(ctx: click.Context, home: str | None, debug: bool) -> None:
    """wgops: run task graphs on daemons connected by RabbitMQ, and operate them."""
    logging.basicConfig(level=logging.DEBUG if debug else logging.WARNING,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not debug:
        # the libraries' own error lines would precede our one-line error
        for noisy in ("aiormq", "aio_pika", "peewee", "asyncio"):
            logging.getLogger(noisy).setLevel(logging.CRITICAL)
    warnings.showwarning = _note
    warnings.simplefilter("always", MovedTargetWarning)
    ctx.obj = AppContext(debug, home)


def _note(message: Warning | str, category: type[Warning], filename: str, lineno: int,
          file: Any = None, line: str | None = None) -> None:
    """A warning (a deprecated name, say) as one line on stderr."""
    click.echo(f"wgops: note: {message}", err=True)
