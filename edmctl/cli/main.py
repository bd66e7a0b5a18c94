"""`edmctl`: the entry point. Registers each command module and maps failures to exit codes.

Exit codes: 0 success, 1 a failed check or run (`CheckFailed`), 2 bad input (`UserError`, usage errors).
"""

import sys

import typer

from edmctl.cli import ablate, dataset, demo, fid, imports, plot, recipe, reproduce, runs, sample, steps, sweep, train
from edmctl.errors import CheckFailed, UserError

app = typer.Typer(
    name="edmctl",
    help="The EDM design space (Karras et al. 2022) as recipes: train, sample, measure FID, sweep and ablate.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

for module in (demo, train, sample, steps, fid, sweep, ablate, runs, plot, reproduce, recipe, dataset, imports):
    module.register(app)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (tests call this in-process)."""
    from edmctl.cli.common import err

    try:
        app(args=argv, prog_name="edmctl")  # click's standalone mode: usage errors exit 2
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except (UserError, CheckFailed) as e:
        err.print(f"[bold red]error:[/] {e}", highlight=False)
        return e.exit_code
    except KeyboardInterrupt:
        err.print("interrupted")
        return 130
    return 0


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
