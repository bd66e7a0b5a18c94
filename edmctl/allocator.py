"""glibc malloc settings for the processes edmctl starts (torchrun children, sweep workers).

A network's activations are a few MiB each. By default glibc serves such blocks with a fresh `mmap` (above its
adaptive `mmap_threshold`) and returns freed heap to the system (above `trim_threshold`), so every forward
pass faults in zeroed pages again. `TUNABLES` keeps blocks up to 32 MiB (the largest threshold glibc accepts on
64-bit) in the heap and keeps up to 1 GiB of freed heap for reuse; `bench/allocator.py` measures the effect.
The tunables take effect only when a process starts: edmctl puts them into the environment of the processes
it starts, and a user applies them to the first one with `export GLIBC_TUNABLES=...` (README). An explicit
`GLIBC_TUNABLES` of the user's is never replaced. Other C libraries ignore the variable.
"""

import os

TUNABLES = "glibc.malloc.mmap_threshold=33554432:glibc.malloc.trim_threshold=1073741824"


def child_environment(env: dict[str, str] | None = None) -> dict[str, str]:
    """`env` (default: this process's) with `TUNABLES` as GLIBC_TUNABLES unless the user set their own."""
    env = dict(os.environ if env is None else env)
    env.setdefault("GLIBC_TUNABLES", TUNABLES)
    return env
