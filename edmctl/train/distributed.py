"""Many devices: the process group torchrun sets up (RANK, WORLD_SIZE, LOCAL_RANK in the environment), NCCL on
GPUs and gloo on CPU, and `edmctl train --nproc N` relaunching itself under torchrun (`train/slurm.py`: on
every node of a Slurm job). Rank 0 alone writes."""

import os
import sys
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Sequence

import torch


@dataclass(frozen=True)
class Dist:
    """Where this process stands: its rank, the world size and its device."""

    rank: int = 0
    world_size: int = 1
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def active(self) -> bool:
        return self.world_size > 1


def pick_device(local_rank: int = 0) -> torch.device:
    """cuda:LOCAL_RANK when a GPU is there, else the CPU."""
    return torch.device("cuda", local_rank) if torch.cuda.is_available() else torch.device("cpu")


def init_distributed() -> Dist:
    """Join torchrun's process group when WORLD_SIZE > 1 (NCCL on GPU, gloo on CPU); a single process otherwise."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = pick_device(local_rank)
    if world_size == 1:
        return Dist(device=device)
    import torch.distributed as dist

    if device.type == "cuda":
        torch.cuda.set_device(device)
    if not dist.is_initialized():
        dist.init_process_group(backend="nccl" if device.type == "cuda" else "gloo")
    return Dist(rank=dist.get_rank(), world_size=dist.get_world_size(), device=device)


def shutdown(info: Dist) -> None:
    if info.active:
        import torch.distributed as dist

        if dist.is_initialized():
            dist.destroy_process_group()


def all_sum(info: Dist, tensor: torch.Tensor) -> torch.Tensor:
    """The sum of `tensor` over every rank (itself on one process)."""
    if not info.active:
        return tensor
    import torch.distributed as dist

    total = tensor.to(info.device).clone()
    dist.all_reduce(total)
    return total.to(tensor.device)


def all_gather_bytes(info: Dist, state: torch.Tensor) -> list[torch.Tensor]:
    """Every rank's uint8 tensor of the same size (RNG states), in rank order, on the CPU."""
    if not info.active:
        return [state.clone()]
    import torch.distributed as dist

    local = state.to(info.device)
    gathered = [torch.empty_like(local) for _ in range(info.world_size)]
    dist.all_gather(gathered, local)
    return [t.cpu() for t in gathered]


def barrier(info: Dist) -> None:
    if info.active:
        import torch.distributed as dist

        dist.barrier()


def no_sync(module: torch.nn.Module, skip: bool):
    """DDP's `no_sync` on accumulation rounds that are not the last (no gradient all-reduce), else nothing."""
    return module.no_sync() if skip and hasattr(module, "no_sync") else nullcontext()


def torchrun_command(nproc: int, argv: list[str], rendezvous: Sequence[str] = ("--standalone",)) -> list[str]:
    """`python -m torch.distributed.run RENDEZVOUS --nproc_per_node N -m edmctl train ARGS` (without --nproc): the
    rendezvous is `--standalone` on one machine, `--nnodes` and `--rdzv_*` across the nodes of a Slurm job."""
    return [sys.executable, "-m", "torch.distributed.run", *rendezvous, f"--nproc_per_node={nproc}",
            "-m", "edmctl", "train", *argv]


def gather_rows(info: Dist, rows: torch.Tensor, capacity: int) -> list[torch.Tensor]:
    """Every rank's float64 rows (n_r, D) with n_r ≤ `capacity`, in rank order, on every rank, on the CPU."""
    if not info.active:
        return [rows]
    import torch.distributed as dist

    padded = torch.zeros(capacity, rows.shape[1], dtype=torch.float64, device=info.device)
    padded[: len(rows)] = rows.to(info.device)
    counts = [torch.zeros(1, dtype=torch.int64, device=info.device) for _ in range(info.world_size)]
    dist.all_gather(counts, torch.tensor([len(rows)], device=info.device))
    gathered = [torch.empty_like(padded) for _ in range(info.world_size)]
    dist.all_gather(gathered, padded)
    return [g[: int(n)].cpu() for g, n in zip(gathered, counts)]
