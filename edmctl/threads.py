"""How many CPU threads torch runs on, in edmctl and in the processes it starts, and the settings that change
floating-point results, recorded with every run.

Threads: torch splits each op over its intra-op threads. The networks edmctl trains on a CPU are small (the
demo's DDPM++ has 0.7 M parameters and works on 8×8 images): an op lasts microseconds, so splitting and joining
costs about what it saves, and on a CPU shared with other processes every op waits at its join for the thread
whose core is busy elsewhere (and spins meanwhile, taking CPU from the others). `bench/threads.py` measures it,
training and sampling the demo's network: on the shared 2-core machine two threads were 12 to 23 times slower
than one, in wall and in CPU seconds. So edmctl runs torch on `DEFAULT` = 1 thread unless `--threads N` or
`EDMCTL_THREADS` says otherwise. `use` applies the count to this process and, through the environment, to
every process started from it (sweep workers, torchrun children, which read `EDMCTL_THREADS` again).

Numerics: a reduction split over N threads adds in another order, so another thread count changes results in
their last bits, and a training run's weights drift apart within a few steps. Every run records `settings()`;
`edmctl reproduce` runs with the recorded ones (`recorded`), and `edmctl compare` shows them.
"""

import os
import sys
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from edmctl.errors import UserError

DEFAULT = 1  # bench/threads.py: small networks on a shared CPU
MAX = 1024
ENV = "EDMCTL_THREADS"
# What the OpenMP and MKL runtimes read when torch loads: `use` sets them for every process edmctl starts. With
# MKL_DYNAMIC on (its default) MKL caps the count at the physical cores, and torch's OpenMP pool follows MKL's.
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "MKL_DYNAMIC")
# Other variables that change how results round (MKL's code path, OpenBLAS's threads, torch's kernel level,
# cuBLAS and TF32), recorded as the process sees them; like the CPU's kernel level, they are fixed when the
# libraries load and `recorded` cannot re-apply them. (The inter-op pool is not among them: it runs
# `torch.jit.fork` tasks side by side, which edmctl does not use, and changes no result.)
OTHER_ENV = ("OPENBLAS_NUM_THREADS", "MKL_CBWR", "MKL_ENABLE_INSTRUCTIONS", "ATEN_CPU_CAPABILITY",
             "CUBLAS_WORKSPACE_CONFIG", "NVIDIA_TF32_OVERRIDE")
FIXED_AT_START = ("cpu_capability", *(f"env.{name}" for name in OTHER_ENV))


def parse(text: str, source: str) -> int:
    """A thread count from `source` (the flag or the environment variable): a whole number in [1, MAX], in ASCII
    digits (int() would also read '1_0' as 10 and '١' as 1)."""
    value = int(text) if text.isascii() and text.isdigit() else 0
    if not 1 <= value <= MAX:
        raise UserError(f"{source}={text!r}: the number of CPU threads must be a whole number from 1 to {MAX}.")
    return value


def requested(option: int | None) -> int:
    """The thread count asked for: `--threads`, else EDMCTL_THREADS, else `DEFAULT`."""
    if option is not None:
        return option  # the CLI checked its range
    text = os.environ.get(ENV)
    return DEFAULT if text is None or not text.strip() else parse(text.strip(), ENV)


def use(threads: int) -> None:
    """torch on `threads` intra-op threads in this process from now on, and in every process it starts: their
    OpenMP and MKL runtimes read `THREAD_ENV` when torch loads, and edmctl processes read EDMCTL_THREADS."""
    os.environ.update({ENV: str(threads), "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads),
                       "MKL_DYNAMIC": "FALSE"})
    if "torch" in sys.modules:  # already loaded: its runtime has read the variables
        sys.modules["torch"].set_num_threads(threads)


def settings() -> dict[str, Any]:
    """What decides how this process's float results round, beyond code and data: thread counts, CPU kernel
    level (AVX2, AVX-512), oneDNN (MKLDNN), deterministic algorithms, float32 matmul precision, cuDNN and TF32
    flags, and the set variables of `THREAD_ENV` and `OTHER_ENV`."""
    import torch

    return {"intra_op_threads": torch.get_num_threads(), "inter_op_threads": torch.get_num_interop_threads(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability(), "mkldnn": torch.backends.mkldnn.enabled,
            "deterministic": torch.are_deterministic_algorithms_enabled(),
            "float32_matmul_precision": torch.get_float32_matmul_precision(),
            "cuda_matmul_tf32": torch.backends.cuda.matmul.allow_tf32, "cudnn_tf32": torch.backends.cudnn.allow_tf32,
            "cudnn_benchmark": torch.backends.cudnn.benchmark, "cudnn_deterministic": torch.backends.cudnn.deterministic,
            "env": {name: os.environ[name] for name in (*THREAD_ENV, *OTHER_ENV) if name in os.environ}}


def _set(obj: Any, name: str) -> Callable[[Any], None]:
    return lambda value: setattr(obj, name, bool(value))


def _appliers() -> dict[str, Callable[[Any], None]]:
    """How `recorded` sets each setting inside a running process."""
    import torch

    return {"intra_op_threads": lambda value: torch.set_num_threads(int(value)),
            "mkldnn": _set(torch.backends.mkldnn, "enabled"),
            "deterministic": lambda value: torch.use_deterministic_algorithms(bool(value)),
            "float32_matmul_precision": torch.set_float32_matmul_precision,
            "cuda_matmul_tf32": _set(torch.backends.cuda.matmul, "allow_tf32"),
            "cudnn_tf32": _set(torch.backends.cudnn, "allow_tf32"),
            "cudnn_benchmark": _set(torch.backends.cudnn, "benchmark"),
            "cudnn_deterministic": _set(torch.backends.cudnn, "deterministic")}


def _apply(values: dict[str, Any]) -> None:
    for name, apply in _appliers().items():
        if name in values:
            apply(values[name])


def _flat(values: dict[str, Any]) -> dict[str, Any]:
    """`settings()` with its variables as `env.NAME` entries."""
    return {k: v for k, v in values.items() if k != "env"} | {f"env.{k}": v for k, v in values.get("env", {}).items()}


def differences(recorded: dict[str, Any], current: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """{setting: (recorded, current)} for every setting, `env.NAME` variables included, that differs."""
    was, now = _flat(recorded), _flat(current)
    return {name: (was.get(name), now.get(name)) for name in sorted(was.keys() | now.keys()) if was.get(name) != now.get(name)}


@contextmanager
def recorded(label: str, values: dict[str, Any] | None) -> Iterator[list[str]]:
    """Run the body with the settings a run recorded (all but `FIXED_AT_START`), restoring this process's afterwards.
    Yields notes, one sentence each, on what could not be matched: a run that recorded none (made before edmctl
    recorded them), or a setting fixed at start-up (kernel level, environment variables) that differs."""
    before = settings()
    if not values:
        yield [f"{label} recorded no thread count (a run from before edmctl recorded it); this run used "
               f"{before['intra_op_threads']} (--threads): a count other than the original's is the likely cause "
               f"of a mismatch."]
        return
    _apply(values)
    try:
        fixed = {name: pair for name, pair in differences(values, settings()).items() if name in FIXED_AT_START}
        yield [f"{label} ran with {name} = {was}, this process with {now} (fixed when torch loads): results may "
               f"differ in their last bits because of it." for name, (was, now) in fixed.items()]
    finally:
        _apply(before)
