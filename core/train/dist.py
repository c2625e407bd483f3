"""Distributed-data-parallel helpers: one code path for 1 process and for ``torchrun``.

Under ``torchrun`` the environment carries RANK, WORLD_SIZE and LOCAL_RANK; we then start a
process group (gloo on CPU, NCCL on CUDA), give each rank its own GPU, and only rank 0 writes
checkpoints, metrics and the progress bar. Without those variables everything is a no-op.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

import torch
import torch.distributed as torch_dist

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DistInfo:
    """Where this process sits: rank, world size, local rank (GPU index on its node)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def enabled(self) -> bool:
        return self.world > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def env_dist() -> DistInfo:
    """The rank layout that ``torchrun`` put in the environment (1 process when absent)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return DistInfo()
    return DistInfo(int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0")))


def init_distributed(device: torch.device) -> DistInfo:
    """Start the process group when launched by ``torchrun``; returns this process's DistInfo."""
    info = env_dist()
    if not info.enabled or torch_dist.is_initialized():
        return info
    backend = "nccl" if device.type == "cuda" else "gloo"
    if device.type == "cuda":
        torch.cuda.set_device(info.local_rank)
    torch_dist.init_process_group(backend=backend)
    log.info("DDP: rank %d/%d (local %d), backend %s", info.rank, info.world, info.local_rank, backend)
    return info


def rank_device(device: torch.device, info: DistInfo) -> torch.device:
    """Each rank uses its own GPU (cuda:LOCAL_RANK); CPU ranks share the CPU."""
    if device.type == "cuda" and info.enabled:
        return torch.device("cuda", info.local_rank)
    return device


def barrier(info: DistInfo) -> None:
    if info.enabled and torch_dist.is_initialized():
        torch_dist.barrier()


def all_reduce_sums(values: dict[str, float], info: DistInfo, device: torch.device) -> dict[str, float]:
    """Sum each value over all ranks (used for loss sums and counts)."""
    if not info.enabled or not values:
        return dict(values)
    keys = sorted(values)
    t = torch.tensor([float(values[k]) for k in keys], dtype=torch.float64, device=device)
    torch_dist.all_reduce(t, op=torch_dist.ReduceOp.SUM)
    return {k: float(v) for k, v in zip(keys, t.tolist(), strict=True)}


def broadcast_flag(flag: bool, info: DistInfo, device: torch.device) -> bool:
    """Rank 0's decision (stop now, early stop) for every rank, so all ranks leave loops together."""
    if not info.enabled:
        return flag
    t = torch.tensor([1 if flag else 0], dtype=torch.int64, device=device)
    torch_dist.broadcast(t, src=0)
    return bool(t.item())


def cleanup(info: DistInfo) -> None:
    if info.enabled and torch_dist.is_initialized():
        torch_dist.destroy_process_group()
