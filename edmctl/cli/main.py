"""`edmctl`: the entry point. Registers each command module and maps failures to exit codes.

Exit codes: 0 success, 1 a failed check or run (`CheckFailed`), 2 bad input (`UserError`, and usage errors: one
line each, `edmctl.cli.usage`), 130 interrupted (Ctrl-C or SIGTERM: `Interrupted`, saying what was kept and the
command that resumes).
A path too long for the file system, or a number past Python's 4,300-digit integer limit (from any command), is
bad input too. Anything else is a bug: one line "internal error: ..." and exit 1, the traceback only with
EDMCTL_DEBUG=1 — a safety net, every known bad input has its own UserError.
"""

import errno
import functools
import os
import shlex
import sys
from typing import Annotated

import typer

from edmctl import threads
from edmctl.cli import (ablate, dataset, demo, fid, imports, plot, recipe, reproduce, runs, runs_copy, sample, steps, sweep,
                        train, usage)
from edmctl.errors import CheckFailed, Interrupted, UserError

app = typer.Typer(
    name="edmctl",
    help="The EDM design space (Karras et al. 2022) as recipes: train, sample, measure FID, sweep and ablate.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)


def version_text() -> str:
    """`edmctl 0.1.0 (git 1a2b3c4d5e6f, modified)`: the installed version, and the commit of the checkout edmctl
    runs from where it is one (the registry's own reading of it)."""
    from importlib.metadata import PackageNotFoundError, version
    from pathlib import Path

    from edmctl.gitstate import find_repo, git_state

    try:
        text = f"edmctl {version('edmctl')}"
    except PackageNotFoundError:
        text = "edmctl (not installed: run from a source tree)"
    repo = find_repo(Path(__file__).resolve().parent)
    commit, diff = git_state(repo) if repo is not None else (None, b"")
    return text + (f" (git {commit[:12]}{', modified' if diff else ''})" if commit else "")


def _print_version(given: bool) -> None:
    if given:
        print(version_text())
        raise typer.Exit()


@app.callback()
def root(
    ctx: typer.Context,
    version: Annotated[bool, typer.Option("--version", is_eager=True, callback=_print_version,
                                          help="Print the version (and git commit) and exit.")] = False,
    threads_: Annotated[int | None, typer.Option(
        "--threads", min=1, max=threads.MAX, metavar="N", show_default=False,
        help=f"CPU threads for torch, here and in the processes edmctl starts (default: EDMCTL_THREADS, else "
             f"{threads.DEFAULT}: fastest for small networks on a shared CPU). Recorded with every run.")] = None,
) -> None:
    """The EDM design space (Karras et al. 2022) as recipes: train, sample, measure FID, sweep and ablate."""
    ctx.meta[THREADS] = threads_  # applied when a command runs (`_as_command`): a bad EDMCTL_THREADS spoils no --help


THREADS = "edmctl.threads"
# int() of a text of more digits than sys.get_int_max_str_digits() (4,300) raises this ValueError: from user input only
# (a seed, an id, EDMCTL_THREADS, a model spec's n), so bad input wherever it is parsed, as a name too long is.
INT_DIGITS_LIMIT = "Exceeds the limit"  # the --threads option, in the context's meta (shared by every subcommand's context)


for module in (demo, train, sample, steps, fid, sweep, ablate, runs, runs_copy, plot, reproduce, recipe, dataset, imports):
    module.register(app)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (tests call this in-process)."""
    from edmctl.cli.common import print_error
    from edmctl.cli.help import readable

    argv = sys.argv[1:] if argv is None else list(argv)
    try:
        command = typer.main.get_command(app)
        readable(command)
        usage.check_values(command)
        as_commands(command)
        return command.main(args=argv, prog_name="edmctl", standalone_mode=False) or 0  # `typer.Exit`'s code, else None
    except usage.NoArgsIsHelpError as e:
        e.show()
        return e.exit_code
    except usage.UsageError as e:
        print_error(usage.one_line(e, command, argv))
        return e.exit_code
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except (UserError, CheckFailed) as e:
        print_error(e)
        return e.exit_code
    except Interrupted as e:
        print_error(f"{e.kept}; {'resume with' if e.resume else 'run it again'}: {e.resume or shlex.join(['edmctl', *argv])}",
                    label="interrupted:", style="yellow")
        return e.exit_code
    except OSError as e:
        if e.errno != errno.ENAMETOOLONG:
            return internal_error(e)
        print_error(f"{e.filename!r}: the name is too long for the file system (at most 255 bytes a name); use a shorter path.")
        return UserError.exit_code
    except ValueError as e:
        if not str(e).startswith(INT_DIGITS_LIMIT):
            return internal_error(e)
        print_error(f"a number given has more than {sys.get_int_max_str_digits():,} digits, past what Python reads as an "
                    f"integer; no option, field or variable of edmctl takes one that long.")
        return UserError.exit_code
    except Exception as e:  # noqa: BLE001 (the safety net)
        return internal_error(e)


def as_commands(command) -> None:
    """Run every callback of the tree as a command (`_as_command`)."""
    if command.callback is not None:
        command.callback = _as_command(command.callback)
    for sub in getattr(command, "commands", {}).values():
        as_commands(sub)


def _as_command(callback):
    """`callback` run as a command: the command that does the work (not a group passing on to a subcommand) first
    applies the thread count (--threads, else EDMCTL_THREADS: a bad value is a UserError only here, so every --help
    works); Ctrl-C raises `Interrupted` (typer would turn it into a silent exit 130) — commands that keep partial
    work say what, and how to resume, themselves (`edmctl.cli.common.on_interrupt`)."""

    @functools.wraps(callback)
    def run(*args, **kwargs) -> None:  # a command's return value is no exit code (`main` reads None as 0)
        ctx = usage.get_current_context()
        if ctx.invoked_subcommand is None:
            threads.use(threads.requested(ctx.meta.get(THREADS)))
        try:
            callback(*args, **kwargs)
        except KeyboardInterrupt:
            raise Interrupted("stopped before it finished, nothing to continue from") from None

    return run


def internal_error(e: Exception) -> int:
    """A bug, not bad input: one line on stderr (the traceback too with EDMCTL_DEBUG=1), exit 1."""
    from edmctl.cli.common import err, print_error

    if os.environ.get("EDMCTL_DEBUG"):
        err.print_exception()
    message = str(e).splitlines()[0] if str(e) else ""
    print_error(f"{type(e).__name__}: {message} (a bug in edmctl: please report it with the command line; "
                "EDMCTL_DEBUG=1 shows the traceback)", label="internal error:")
    return 1


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
