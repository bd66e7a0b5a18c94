"""`edmctl`: the entry point. Registers each command module and maps failures to exit codes.

Exit codes: 0 success, 1 a failed check or run (`CheckFailed`), 2 bad input (`UserError`, usage errors).
"""

import sys

import click
import typer

from edmctl.cli import fid, recipe, runs
from edmctl.errors import CheckFailed, UserError

app = typer.Typer(
    name="edmctl",
    help="The EDM design space (Karras et al. 2022) as recipes: train, sample, measure FID, sweep and ablate.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

for module in (recipe, fid, runs):
    module.register(app)


def main(argv: list[str] | None = None) -> int:
    """Run the CLI and return its exit code (also used by tests in-process)."""
    from edmctl.cli.common import err

    try:
        result = app(args=argv, prog_name="edmctl", standalone_mode=False)
    except (UserError, CheckFailed) as e:
        err.print(f"[bold red]error:[/] {e}", highlight=False, markup=True)
        return e.exit_code
    except click.exceptions.NoArgsIsHelpError as e:
        click.echo(e.ctx.get_help())
        return 0
    except click.UsageError as e:
        e.show()
        return 2
    except click.exceptions.Exit as e:
        return e.exit_code
    except (click.Abort, KeyboardInterrupt):
        err.print("interrupted")
        return 130
    return result if isinstance(result, int) else 0


def entry() -> None:
    sys.exit(main())


if __name__ == "__main__":
    entry()
