"""Slurm, through submitit (the library Hydra's Slurm launcher uses): edmctl never writes sbatch text itself.

    request = SlurmRequest(partition="gpu", time="04:00:00", options=("account=lab",))
    check_submission(home, request, allow_sqlite=False)  # a shared registry, a well-formed request, sbatch on PATH
    executor = slurm_executor(folder, request, cpus_per_task=4, gpus_per_node=1)
    jobs = submit_array(executor, fn, n=8, args=(...))  # one job array: task i runs fn(*args)
    wait_until_gone(array_id)                            # until squeue no longer lists it; Ctrl-C cancels it
    first_result(job)                                    # what task 0 returned (CheckFailed: failed or killed)
    cancel(array_id)                                     # scancel the array (its running tasks get SIGTERM)

Waiting asks `squeue` (the controller), not `sacct`: accounting (slurmdbd) is optional in Slurm and missing on
small clusters, and a job that is no longer queued or running has ended, however it ended. What each task did
is in the registry (every run records its Slurm job id: `registry.environment`).

What a job inherits: sbatch passes the submitting shell's environment (`--export=ALL`, Slurm's default), so
the Python, PYTHONPATH and EDMCTL_* settings of the submitting process are those of the tasks; the registry's
home and URL are passed explicitly as well. Files (run folders, submitit's pickles and logs) must be on a
filesystem every node mounts.
"""

import math
import re
import shutil
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

from edmctl import paths
from edmctl.errors import CheckFailed, UserError

EXTRA = "pip install 'edmctl[slurm]'"
POLL_S = 2.0  # how often a waiting process asks squeue
TIME_FORMAT = re.compile(r"^(?:(\d+)-)?(\d+):(\d\d):(\d\d)$")  # [D-]HH:MM:SS, as sbatch --time
OPTION_KEY = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")
PARTITION = re.compile(r"^[A-Za-z0-9_.-]+(,[A-Za-z0-9_.-]+)*$")  # a name, or several comma-separated


@dataclass(frozen=True)
class SlurmRequest:
    """What every Slurm submission of edmctl asks for: a partition, a time limit per job (or array task) and any
    other sbatch options as KEY=VALUE (`--slurm-option account=lab`)."""

    partition: str | None = None
    time: str = "01:00:00"
    options: tuple[str, ...] = ()

    def minutes(self) -> int:
        """The time limit in whole minutes (rounded up), as submitit passes it to sbatch."""
        match = TIME_FORMAT.match(self.time)
        if not match:
            raise UserError(f"--time {self.time!r} must be HH:MM:SS or D-HH:MM:SS, e.g. 04:00:00.")
        days, hours, minutes, seconds = (int(g or 0) for g in match.groups())
        if minutes > 59 or seconds > 59:
            raise UserError(f"--time {self.time!r}: minutes and seconds must be 00-59.")
        return max(1, math.ceil(((days * 24 + hours) * 60 + minutes) + seconds / 60))

    def sbatch_options(self) -> dict[str, str]:
        """`--slurm-option KEY=VALUE` items as submitit's `additional_parameters` (each becomes a `#SBATCH` line of
        the job script, so a value holds no line break or other control character)."""
        options = {}
        for item in self.options:
            key, sep, value = item.partition("=")
            if not sep or not OPTION_KEY.match(key) or not value or not value.isprintable():
                raise UserError(f"--slurm-option {item!r} must be KEY=VALUE with an sbatch option name as KEY and a "
                                "printable one-line VALUE, e.g. account=lab or constraint=a100.")
            options[key] = value
        return options

    def check(self) -> None:
        """A well-formed request: a partition name, a time limit and options sbatch can take."""
        if self.partition is not None and not PARTITION.match(self.partition):
            raise UserError(f"--partition {self.partition!r} must be a Slurm partition name (letters, digits, _ . -), "
                            "or several separated by commas.")
        self.minutes()
        self.sbatch_options()


def submitit():
    """The submitit module; a UserError naming the extra when it is not installed."""
    try:
        import submitit
    except ImportError:
        raise UserError(f"--executor slurm needs submitit: {EXTRA}.") from None
    return submitit


def check_commands() -> None:
    """sbatch and squeue reachable: edmctl submits from a machine of the cluster (a login node)."""
    missing = [tool for tool in ("sbatch", "squeue", "scancel") if shutil.which(tool) is None]
    if missing:
        raise UserError(f"--executor slurm needs Slurm's {', '.join(missing)} on PATH: run edmctl on a login node of "
                        "the cluster.")


def check_shared_registry(home: Path | str | None, allow_sqlite: bool) -> None:
    """Refuse a SQLite registry unless the user allows it: jobs on other nodes would write one SQLite file over a
    network filesystem, whose locks do not hold (a corrupted registry)."""
    from edmctl.registry import db

    path = db.sqlite_path(db.database_url(Path(home) if home is not None else None))
    if path is not None and not allow_sqlite:
        raise UserError(f"--executor slurm needs a registry every node can share: set EDMCTL_DB_URL to a PostgreSQL "
                        f"database (postgresql+psycopg://user@host/db); the SQLite file {path} is unsafe on a network "
                        "filesystem (pass --allow-sqlite if every job runs on this machine's disk).")


def check_submission(home: Path | str | None, request: SlurmRequest, allow_sqlite: bool) -> None:
    """Everything a submission needs, before anything is recorded: submitit, a registry every node can share, a
    home no other user can write (submitit's job pickles go under it), a well-formed request and Slurm's commands."""
    submitit()
    check_shared_registry(home, allow_sqlite)
    paths.check_code_folder(Path(home or paths.home()).resolve(), "submitit's job pickles")
    request.check()
    check_commands()


def registry_env(registry) -> dict[str, str]:
    """EDMCTL_HOME (absolute) and EDMCTL_DB_URL of `registry`: what a job sets so that it records there."""
    return {"EDMCTL_HOME": str(registry.home.resolve()), "EDMCTL_DB_URL": registry.url}


def slurm_executor(folder: Path, request: SlurmRequest, **resources: Any):
    """A submitit SlurmExecutor writing its pickles and logs under `folder/<job id>`; `resources` are submitit's
    Slurm parameters (cpus_per_task, gpus_per_node, nodes, ntasks_per_node, array_parallelism, ...)."""
    module = submitit()
    check_commands()
    executor = module.SlurmExecutor(folder=folder / "%j")
    parameters = {"time": request.minutes(), "additional_parameters": request.sbatch_options(), **resources}
    if request.partition:
        parameters["partition"] = request.partition
    executor.update_parameters(**{k: v for k, v in parameters.items() if v is not None})
    return executor


def submit_array(executor, fn: Callable, n: int, args: Sequence[Any]) -> list:
    """Submit one job array of `n` tasks, each running `fn(*args)`; its submitit jobs (`<array id>_<task>`)."""
    return _submitting(lambda: executor.map_array(fn, *([arg] * n for arg in args)))


def submit(executor, fn: Callable, args: Sequence[Any]):
    """Submit one job running `fn(*args)` (on every node of it); its submitit job."""
    return _submitting(lambda: executor.submit(fn, *args))


def _submitting(work: Callable[[], Any]) -> Any:
    module = submitit()
    try:
        return work()
    except (module.core.utils.FailedJobError, module.core.utils.FailedSubmissionError,
            subprocess.CalledProcessError) as error:
        text = str(getattr(error, "stderr", None) or error).strip().splitlines()
        raise UserError(f"sbatch refused the job: {text[-1] if text else error}; check --partition, --time and "
                        "--slurm-option.") from None


def first_result(job) -> Any:
    """What task 0 of an ended job returned; CheckFailed when it raised or left no result (cancelled, out of
    time, killed), naming its log."""
    task = job.task(0)
    if not task.paths.result_pickle.exists():
        raise CheckFailed(f"Slurm job {job.job_id} ended without a result (cancelled, out of time or killed); "
                          f"its log: {task.paths.stderr}")
    try:
        return task.result()
    except submitit().core.utils.FailedJobError as error:
        lines = [line for line in str(error).splitlines() if line.strip()]
        raise CheckFailed(f"Slurm job {job.job_id} failed: {lines[-1].strip() if lines else error}; "
                          f"its log: {task.paths.stderr}") from None


def array_id(job_id: str) -> str:
    """`1234` of a task `1234_5` (a plain job id as it is)."""
    return job_id.split("_", 1)[0]


def in_queue(job_id: str) -> bool:
    """Whether squeue still lists the job (any task of an array): pending, running, completing or suspended."""
    done = subprocess.run(["squeue", "-h", "-j", job_id, "-o", "%i"], capture_output=True, text=True, timeout=60)
    return done.returncode == 0 and bool(done.stdout.strip())  # an unknown (finished, purged) id is an error


def wait_until_gone(job_id: str, on_poll: Callable[[], None] = lambda: None, poll_s: float = POLL_S) -> None:
    """Wait until the job has left the queue, calling `on_poll` after each look; Ctrl-C cancels the job."""
    try:
        while in_queue(job_id):
            on_poll()
            time.sleep(poll_s)
        on_poll()
    except KeyboardInterrupt:
        cancel(job_id)
        raise


def cancel(job_id: str, pending_only: bool = False) -> None:
    """scancel the job (every task of an array; only those not started with `pending_only`); its running tasks
    get SIGTERM."""
    done = subprocess.run(["scancel", *(["--state=PENDING"] if pending_only else []), job_id], capture_output=True,
                          text=True, timeout=60)
    if done.returncode != 0 and in_queue(job_id):
        raise CheckFailed(f"scancel {job_id} failed: {done.stderr.strip() or done.returncode}")
