"""A throwaway single-node Slurm cluster the tests start themselves: `munged`, `slurmctld` and `slurmd` (Debian's
`munge` and `slurm-wlm`) in a temp folder, with a generated `slurm.conf` naming this host.

    with SlurmCluster.started() as cluster:   # munge key, munged, slurm.conf, slurmctld, slurmd; node idle
        cluster.env                           # {"SLURM_CONF": ...}: what sbatch, squeue, scancel need
        cluster.run(["squeue"])               # a Slurm command against this cluster

Everything the cluster writes (munge key and socket, state, spool, logs) lives in its folder, on free local
ports; the daemons run in the foreground as children of the test process (root: `SlurmUser=root`), processes are
tracked by `proctrack/linuxproc` and tasks get no cgroup (`task/none`), so no system service or cgroup set-up is
needed. A cluster that cannot start raises `ServerUnavailable` (servers.py) naming what is missing.
"""

import getpass
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import ContextManager

from servers import ServerUnavailable, free_port, running

DAEMONS = ("munged", "slurmctld", "slurmd")
COMMANDS = ("sbatch", "squeue", "scancel", "sinfo", "scontrol")
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 20.0


def slurm_conf(folder: Path, host: str, cpus: int) -> str:
    """One node (`host`, `cpus` CPUs, reached on 127.0.0.1) in one default partition `debug`; no accounting."""
    return "\n".join([
        "ClusterName=edmctltest", f"SlurmctldHost={host}(127.0.0.1)", "SlurmUser=root", "SlurmdUser=root",
        "AuthType=auth/munge", "CredType=cred/munge", f"AuthInfo=socket={folder / 'munge.socket'}",
        f"SlurmctldPort={free_port()}", f"SlurmdPort={free_port()}",
        f"StateSaveLocation={folder / 'state'}", f"SlurmdSpoolDir={folder / 'spool'}",
        f"SlurmctldPidFile={folder / 'slurmctld.pid'}", f"SlurmdPidFile={folder / 'slurmd.pid'}",
        f"SlurmctldLogFile={folder / 'slurmctld.log'}", f"SlurmdLogFile={folder / 'slurmd.log'}",
        "ProctrackType=proctrack/linuxproc", "TaskPlugin=task/none", "JobAcctGatherType=jobacct_gather/none",
        "AccountingStorageType=accounting_storage/none", "JobCompType=jobcomp/none", "MailProg=/bin/true",
        "SelectType=select/cons_tres", "SelectTypeParameters=CR_CPU", "ReturnToService=2", "MpiDefault=none",
        "KillWait=5", "InactiveLimit=0", "SchedulerParameters=sched_interval=2",
        f"NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} State=UNKNOWN",
        f"PartitionName=debug Nodes={host} Default=YES MaxTime=INFINITE State=UP", ""])


class SlurmCluster:
    """munged, slurmctld and slurmd of a one-node cluster whose files are all in `folder`."""

    def __init__(self, folder: Path):
        self.folder = folder
        self.host = socket.gethostname().split(".")[0]
        self.cpus = len(os.sched_getaffinity(0))
        self.conf = folder / "slurm.conf"
        self.env = {"SLURM_CONF": str(self.conf)}
        self.daemons: list[subprocess.Popen] = []

    @classmethod
    def started(cls) -> ContextManager["SlurmCluster"]:
        missing = [tool for tool in (*DAEMONS, *COMMANDS) if shutil.which(tool) is None]
        if missing:
            raise ServerUnavailable(f"{', '.join(missing)} not on PATH (Debian: apt-get install slurm-wlm munge)")
        if os.geteuid() != 0:
            raise ServerUnavailable("the test cluster's slurmd must run as root (it starts jobs as their user)")
        return running(cls(Path(tempfile.mkdtemp(prefix="edmctl-slurm-"))))

    def run(self, argv: list[str], check: bool = True) -> subprocess.CompletedProcess:
        """A Slurm client command against this cluster."""
        return subprocess.run(argv, env={**os.environ, **self.env}, capture_output=True, text=True, check=check,
                              timeout=30)

    def _start(self) -> None:
        self.folder.chmod(0o711)  # munged wants its socket's folder searchable by everyone
        for name in ("state", "spool"):
            (self.folder / name).mkdir()
        key = self.folder / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        self.conf.write_text(slurm_conf(self.folder, self.host, self.cpus))
        self._daemon(["munged", "--foreground", "--force", f"--key-file={key}",
                      f"--socket={self.folder / 'munge.socket'}", f"--pid-file={self.folder / 'munged.pid'}",
                      f"--log-file={self.folder / 'munged.log'}", f"--seed-file={self.folder / 'munge.seed'}"])
        self._wait(lambda: (self.folder / "munge.socket").exists(), "munged")
        self._daemon(["slurmctld", "-D", "-f", str(self.conf)])
        self._wait(lambda: self.run(["scontrol", "ping"], check=False).returncode == 0, "slurmctld")
        self._daemon(["slurmd", "-D", "-f", str(self.conf)])
        self._wait(self._idle, "slurmd (node idle in sinfo)")

    def _daemon(self, argv: list[str]) -> None:
        log = open(self.folder / f"{argv[0]}.out", "wb")
        self.daemons.append(subprocess.Popen(argv, env={**os.environ, **self.env}, stdout=log, stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL))
        log.close()

    def _idle(self) -> bool:
        states = self.run(["sinfo", "-h", "-N", "-o", "%T"], check=False).stdout.split()
        return states == ["idle"]

    def _wait(self, ready, what: str) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not ready():
            exited = [d.args[0] for d in self.daemons if d.poll() is not None]
            if exited or time.monotonic() > deadline:
                raise ServerUnavailable(f"{what} did not start ({'exited: ' + ', '.join(exited) if exited else 'timed out'})"
                                         f"; logs: {self._logs()}")
            time.sleep(0.2)

    def _logs(self) -> str:
        tails = []
        for log in sorted(self.folder.glob("*.log")) + sorted(self.folder.glob("*.out")):
            text = log.read_text(errors="replace").strip()
            if text:
                tails.append(f"{log.name}: {text[-600:]}")
        return " | ".join(tails) or "none"

    def _stop(self) -> None:
        """Cancel every job, then stop the daemons in reverse order (SIGTERM, then SIGKILL)."""
        if len(self.daemons) == len(DAEMONS) and all(d.poll() is None for d in self.daemons):
            self.run(["scancel", f"--user={getpass.getuser()}"], check=False)
            deadline = time.monotonic() + STOP_TIMEOUT_S
            while self.run(["squeue", "-h"], check=False).stdout.strip() and time.monotonic() < deadline:
                time.sleep(0.5)
        for daemon in reversed(self.daemons):
            if daemon.poll() is None:
                daemon.send_signal(signal.SIGTERM)
            try:
                daemon.wait(STOP_TIMEOUT_S)
            except subprocess.TimeoutExpired:
                daemon.kill()
                daemon.wait()
