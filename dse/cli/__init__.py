"""The ``dse`` command line: thin commands that parse, call the library and format.

Errors from the library (:class:`~dse.errors.DseError`), and any ``OSError`` or
``MemoryError`` the library did not name itself, become one line on stderr and exit status 2;
Ctrl-C exits with 130. No Python traceback reaches the user for bad input, unless ``dse -v``
asks for it. ``dse -q`` leaves only results and errors (no progress bars, estimates or notes).
The library names bad arguments in Python terms (``num_chips``); this is the one place that
turns them into the command line's options (``--num-chips``).

Shell completion (bash, zsh, fish) comes from click: ``eval "$(_DSE_COMPLETE=bash_source dse)"``.
"""

from __future__ import annotations

import re
import sys
import traceback

import click

from dse._version import __version__
from dse.cli._output import set_verbosity, verbosity
from dse.cli.chips import chips
from dse.errors import DseError, InputError, TooLargeError
from dse.files import reason


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="dse")
@click.option(
    "-v",
    "--verbose",
    count=True,
    help="More detail: the estimate line off a terminal, and a traceback with each error.",
)
@click.option(
    "-q", "--quiet", is_flag=True, help="Results and errors only: no progress bars or estimates."
)
def cli(verbose: int, quiet: bool) -> None:
    """Design-space exploration of AI accelerators for training large language models.

    Shell completion: eval "$(_DSE_COMPLETE=bash_source dse)" (zsh_source, fish_source).
    """
    set_verbosity(-1 if quiet else verbose)


cli.add_command(chips)


def _register_optional() -> None:
    # Commands of later layers register themselves here so that this module stays the one
    # place that lists them.
    from dse.cli import evaluate, workloads

    cli.add_command(workloads.workloads)
    cli.add_command(evaluate.evaluate)
    cli.add_command(evaluate.compare)
    cli.add_command(evaluate.validate)
    from dse.cli import search

    cli.add_command(search.sweep)
    cli.add_command(search.search)
    cli.add_command(search.pareto)
    cli.add_command(search.plot)
    cli.add_command(search.report)
    cli.add_command(search.worker)
    from dse.cli import uncertainty

    cli.add_command(uncertainty.sensitivity)
    cli.add_command(uncertainty.robust)
    from dse.cli import framework

    cli.add_command(framework.scaling)
    cli.add_command(framework.roadmap)


FLAGS = {
    "start": "--from",
    "stop": "--to",
    "plot_path": "--plot",
    "chips": "CHIP",
    "space": "SPACE",
    "df": "RESULTS",
    "path": "RESULTS",
    "objectives": "--minimize/--maximize",
    "confirm": "--yes",
    "options": "--engine",
    "references": "--reference",
}
"""Library arguments whose command-line option is not ``--`` + the name with dashes."""


def flag(argument: str) -> str:
    """The command-line option of a library argument: ``num_chips`` → ``--num-chips``,
    ``plan.zero_stage`` → ``--zero-stage`` (a pinned plan's options are flat)."""
    name = argument.removeprefix("plan.")
    return FLAGS.get(name, "--" + name.replace("_", "-"))


def command_line_message(error: DseError) -> str:
    """The error's line as a user of the command line reads it (options, not arguments)."""
    if isinstance(error, InputError) and error.argument is not None:
        text = error.message(flag(error.argument))
    elif isinstance(error, TooLargeError):
        text = error.message("--yes", "--dry-run")
    else:
        text = str(error)
    # Other arguments a message names are in backticks: `num_chips`, `restart=True`.
    return _MENTION.sub(lambda m: flag(m.group(1)), text)


_MENTION = re.compile(r"`([A-Za-z_][A-Za-z0-9_.]*)(?:=True)?`")


def main(argv: list[str] | None = None) -> None:
    """Entry point of the console script and of ``python -m dse``."""
    _register_optional()
    set_verbosity(0)
    try:
        code = cli.main(args=argv, prog_name="dse", standalone_mode=False)
    except DseError as error:
        _traceback()
        click.echo(f"dse: error: {command_line_message(error)}", err=True)
        sys.exit(2)
    except click.exceptions.Abort:
        click.echo("dse: interrupted", err=True)
        sys.exit(130)
    except click.UsageError as error:
        if _asks_for_help(error) and error.ctx is not None:
            click.echo(error.ctx.get_help())  # `dse` or `dse chips` alone: their --help
            sys.exit(0)
        command = error.ctx.command_path if error.ctx else "dse"
        click.echo(f"dse: error: {error.format_message()} (see '{command} --help')", err=True)
        sys.exit(2)
    except click.ClickException as error:
        click.echo(f"dse: error: {error.format_message()}", err=True)
        sys.exit(error.exit_code)
    except BrokenPipeError:
        sys.exit(0)
    except OSError as error:
        _traceback()
        where = f"{error.filename}: " if error.filename else ""
        click.echo(f"dse: error: {where}{reason(error)}", err=True)
        sys.exit(2)
    except MemoryError:
        click.echo(
            "dse: error: out of memory (try fewer designs or a smaller --chunk-size)", err=True
        )
        sys.exit(2)
    except SystemError as error:
        if not _caused_by_interrupt(error):
            raise
        click.echo("dse: interrupted", err=True)
        sys.exit(130)
    sys.exit(code if isinstance(code, int) else 0)


def _asks_for_help(error: click.UsageError) -> bool:
    """Whether ``error`` is a command group called without a command (click 8.2 raises
    ``NoArgsIsHelpError`` for it, where 8.1 printed the help)."""
    no_args = getattr(click.exceptions, "NoArgsIsHelpError", None)
    return no_args is not None and isinstance(error, no_args)


def _caused_by_interrupt(error: BaseException) -> bool:
    """Whether Ctrl-C is behind ``error``: a compiled (numba) kernel that calls back into
    Python while the signal is pending reports the KeyboardInterrupt as a SystemError."""
    seen: set[int] = set()
    cause: BaseException | None = error
    while cause is not None and id(cause) not in seen:
        if isinstance(cause, KeyboardInterrupt):
            return True
        seen.add(id(cause))
        cause = cause.__cause__ or cause.__context__
    return False


def _traceback() -> None:
    """With ``dse -v``, the Python traceback of the error being handled, on stderr."""
    if verbosity() >= 1:
        click.echo(traceback.format_exc().rstrip(), err=True)
