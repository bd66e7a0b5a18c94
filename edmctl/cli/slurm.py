"""The options `edmctl sweep` and `edmctl train` share for running on Slurm (`--executor slurm`), and the check
that an option given belongs to the executor chosen."""

from typing import Annotated, Any

import typer

from edmctl.errors import UserError

ExecutorOpt = Annotated[str, typer.Option("--executor", metavar="local|slurm",
                        help="Where to run: local (this machine; the default) or slurm (jobs submitted through submitit).")]
PartitionOpt = Annotated[str | None, typer.Option("--partition", help="Slurm partition (default: the cluster's).")]
TimeOpt = Annotated[str | None, typer.Option("--time", metavar="HH:MM:SS", help="Slurm time limit of each job (default 01:00:00).")]
SlurmOptionOpt = Annotated[list[str] | None, typer.Option("--slurm-option", metavar="KEY=VALUE",
                           help="Any other sbatch option (repeatable), e.g. account=lab or constraint=a100.")]
AllowSqliteOpt = Annotated[bool, typer.Option("--allow-sqlite", help="Let Slurm jobs write a SQLite registry (safe only "
                           "when every job runs on this machine's disk; use EDMCTL_DB_URL=postgresql+psycopg://...).")]


def executor_options(executor: str, options: dict[str, tuple[str, ...]], given: dict[str, Any]) -> dict[str, Any]:
    """The options given (not None, not an empty tuple, not False) after checking that `executor` is a key of `options`
    (executor -> the option names it takes) and takes every one of them; a UserError naming the first that does not."""
    if executor not in options:
        raise UserError(f"--executor {executor!r} is not one of {', '.join(options)}.")
    given = {name: value for name, value in given.items() if value is not None and value is not False and value != ()}
    for name in given:
        if name not in options[executor]:
            owner = next(e for e, names in options.items() if name in names)
            raise UserError(f"--{name.replace('_', '-')} applies to --executor {owner}, not {executor}.")
    return given
