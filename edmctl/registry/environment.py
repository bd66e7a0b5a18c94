"""What a run ran on: host, process (and Slurm job), code version (git), Python/torch/CUDA, devices, the settings
that change how results round (threads, kernel level, oneDNN, deterministic and TF32 flags: `edmctl.threads`)
and installed packages.

Captured once when a run opens. Must be fast and never fail: git may be absent, the package may not live in a
repository, torch may report no GPU. Files too large for a column (the git diff, the package list) are returned
as `files` for the run to save as `env` artifacts.
"""

import hashlib
import json
import os
import platform
import shutil
import socket
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

from edmctl import allocator, threads
from edmctl.gitstate import find_repo, git_state



@dataclass
class Environment:
    columns: dict[str, Any]  # values for RunRecord columns
    extra: dict[str, Any] = field(default_factory=dict)  # merged into RunRecord.extra
    files: dict[str, bytes] = field(default_factory=dict)  # env/<name> artifacts: the git diff, packages.txt


def capture() -> Environment:
    """Everything known about this process's environment (see the module docstring)."""
    env = Environment(columns={
        "host": socket.gethostname(), "pid": os.getpid(), "process_ns": process_namespace(), "cwd": os.getcwd(),
        "python_version": platform.python_version(),
    })
    env.columns.update(torch_info())
    env.extra["glibc_tunables"] = allocator.AT_START  # malloc settings this process started with (None: glibc's)
    env.extra["slurm_job"] = slurm_job()
    env.extra["numerics"] = threads.settings()  # `edmctl reproduce` runs with these
    packages = installed_packages()
    env.columns["packages_hash"] = hashlib.sha256(packages.encode()).hexdigest()
    env.files["packages.txt"] = packages.encode()
    _add_git(env)
    return env


def slurm_job() -> str | None:
    """The Slurm job this process runs in: `<array id>_<task id>` for a job array's task, else the job id; None
    outside Slurm."""
    array, task = os.environ.get("SLURM_ARRAY_JOB_ID"), os.environ.get("SLURM_ARRAY_TASK_ID")
    return f"{array}_{task}" if array and task else os.environ.get("SLURM_JOB_ID")


def process_namespace() -> str | None:
    """`<boot id>/<PID namespace inode>`: where a recorded PID means this process. Two containers sharing a
    hostname (k8s hostNetwork, `docker --network host`) have different PID namespaces, and a reboot changes the
    boot id, so a run's PID is checked only where this matches (`registry.store`). None without /proc."""
    try:
        boot_id = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return None
    return f"{boot_id}/{namespace}"


def torch_info() -> dict[str, Any]:
    """torch and CUDA versions, device names and the world size (torch is imported here, lazily)."""
    try:
        import torch
    except ImportError:
        return {"devices_json": '["cpu"]', "world_size": 1}
    if torch.cuda.is_available():
        devices = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    else:
        devices = ["cpu"]
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    return {"torch_version": torch.__version__, "cuda_version": torch.version.cuda,
            "devices_json": json.dumps(devices), "world_size": world_size}


@lru_cache(maxsize=1)
def installed_packages() -> str:
    """`name==version` of every installed distribution, sorted, one a line (importlib.metadata: no subprocess).

    Read once per process: what a process imported does not change when packages are installed under it."""
    names = set()
    for dist in metadata.distributions():
        name, version = _name_version(dist)
        if name:
            names.add(f"{name.lower()}=={version}")
    return "".join(f"{line}\n" for line in sorted(names))


def _name_version(dist: metadata.Distribution) -> tuple[str | None, str | None]:
    """Name and Version from the metadata headers, read as plain lines (the email parser is 10x slower)."""
    text = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or ""
    found: dict[str, str] = {}
    for line in text.splitlines():
        if not line:
            break  # end of the headers
        key, _, value = line.partition(": ")
        if key in ("Name", "Version"):
            found[key] = value.strip()
    return found.get("Name"), found.get("Version")


def _add_git(env: Environment) -> None:
    """The commit, dirty flag and uncommitted diff of the repository holding the edmctl package itself. Only that
    one: the repository edmctl happens to run in (the cwd) may hold anything, secrets included, and is not read."""
    package_repo = find_repo(Path(__file__).resolve().parent)
    if package_repo is not None and shutil.which("git"):
        commit, diff = git_state(package_repo)
        env.columns.update(git_commit=commit, git_dirty=bool(diff))
        if diff:
            env.files["git.diff"] = diff
