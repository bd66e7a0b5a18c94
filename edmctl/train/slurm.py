"""`edmctl train RECIPE --executor slurm --nodes N --gpus-per-node G`: one Slurm job of N nodes, submitted through
submitit, with one task per node that runs torchrun there (`procs_per_node` processes: one per GPU, NCCL; or
CPU processes, gloo, when G = 0).

Rendezvous as torchrun's multi-node instructions say: every node runs the same command with `--nnodes N`,
`--rdzv_backend c10d`, `--rdzv_id <job id>` and `--rdzv_endpoint <first host of the allocation>:<port>`; the
torchrun on the first host serves the rendezvous. The port is derived from the job id, so two jobs sharing a
first node do not collide. Rank 0 records the run, as with `--nproc` on one machine, and prints it as JSON; the
first node's task returns that document, which the submitting process prints once the job has ended.
"""

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

PORT_BASE, PORT_SPAN = 20000, 10000  # rendezvous ports 20000-29999, by job id
GLOO_PROCS = 2  # processes per node without GPUs (gloo), unless --procs-per-node says otherwise


def rendezvous(job_id: str, hosts: list[str], nodes: int) -> list[str]:
    """torchrun's multi-node rendezvous options: c10d on the first host, a port and an id from the job."""
    port = PORT_BASE + int(job_id.split("_")[0]) % PORT_SPAN
    return [f"--nnodes={nodes}", "--rdzv_backend=c10d", f"--rdzv_endpoint={hosts[0]}:{port}", f"--rdzv_id={job_id}"]


def node_main(argv: list[str], procs_per_node: int, registry_env: dict[str, str]) -> dict[str, Any] | None:
    """One node's task: run torchrun with `edmctl train ARGV --json`; the first node returns rank 0's document."""
    import submitit

    from edmctl.train.distributed import torchrun_command

    job = submitit.JobEnvironment()
    os.environ.update(registry_env)  # the submitter's registry, whatever the node's environment says
    command = torchrun_command(procs_per_node, [*argv, "--json"], rendezvous(job.job_id, job.hostnames, job.num_nodes))
    done = subprocess.run(command, stdout=subprocess.PIPE, text=True)
    sys.stdout.write(done.stdout)  # into the job's log as well
    if done.returncode != 0:
        raise RuntimeError(f"torchrun on {job.hostname} exited with code {done.returncode}")
    return json.loads(done.stdout) if job.node == 0 else None


@dataclass
class SlurmTraining:
    """The job `edmctl train --executor slurm` submits (`OPTIONS`: the CLI options it takes)."""

    OPTIONS = ("nodes", "gpus_per_node", "procs_per_node", "partition", "time", "slurm_option", "allow_sqlite")
    nodes: int = 1
    gpus_per_node: int = 0
    procs_per_node: int | None = None
    partition: str | None = None
    time: str = "01:00:00"
    slurm_option: tuple[str, ...] = ()
    allow_sqlite: bool = False

    @property
    def procs(self) -> int:
        return self.procs_per_node or self.gpus_per_node or GLOO_PROCS

    def run(self, argv: list[str], home: Path | str | None = None, on_submit=lambda job: None) -> dict[str, Any]:
        """Submit the job, wait until it has ended (Ctrl-C cancels it) and return rank 0's outcome document."""
        from edmctl import slurm
        from edmctl.allocator import apply_to_children
        from edmctl.registry import Registry

        request = slurm.SlurmRequest(self.partition, self.time, tuple(self.slurm_option))
        slurm.check_submission(home, request, self.allow_sqlite)
        registry = Registry(home, create=True)
        executor = slurm.slurm_executor(registry.home.resolve() / "slurm", request, nodes=self.nodes,
                                        ntasks_per_node=1, cpus_per_task=self.procs,
                                        gpus_per_node=self.gpus_per_node or None, job_name="edmctl-train")
        apply_to_children()  # torchrun and its workers start with edmctl's malloc settings
        job = slurm.submit(executor, node_main, (argv, self.procs, slurm.registry_env(registry)))
        on_submit(job)
        slurm.wait_until_gone(job.job_id)
        return slurm.first_result(job)
