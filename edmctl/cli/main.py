"""`edmctl`: the entry point. Registers each command module and maps failures to exit codes.

Exit codes: 0 success, 1 a failed check or run (`CheckFailed`), 2 bad input (`UserError`, usage errors).
A path too long for the file system (from any command) is bad input too. Anything else is a bug: one line
"internal error: ..." and exit 1, the traceback only with EDMCTL_DEBUG=1 — a safety net, every known bad input
has its own UserError.
"""

import errno
import os
import sys

import typer

from edmctl.cli import (ablate, dataset, demo, fid, imports, plot, recipe, reproduce, runs, runs_copy, sample, steps, sweep,
                        train)
from edmctl.errors import CheckFailed, UserError

app = typer.Typer(
    name="edmctl",
    help="The EDM design space (Karras et al. 2022) as recipes: train, sample, measure FID, sweep and ablate.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

for module in (demo, train, sample, steps, fid, sweep, ablate, runs, runs_copy, plot, reproduce, recipe, dataset, imports):
    module.register(app)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (tests call this in-process)."""
    from edmctl.cli.common import err, print_error

    try:
        app(args=argv, prog_name="edmctl")  # click's standalone mode: usage errors exit 2
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except (UserError, CheckFailed) as e:
        print_error(e)
        return e.exit_code
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130
    except OSError as e:
        if e.errno != errno.ENAMETOOLONG:
            return internal_error(e)
        print_error(f"{e.filename!r}: the name is too long for the file system (at most 255 bytes a name); use a shorter path.")
        return UserError.exit_code
    except Exception as e:  # noqa: BLE001 (the safety net)
        return internal_error(e)
    return 0


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
