"""A batch sampler whose order is a pure function of (seed, epoch): exact resume, DDP sharding.

Each epoch's permutation comes from a generator seeded with derive_seed(seed, epoch); the list
is padded (by wrapping) to a multiple of the world size and rank r takes every world-th item,
as torch's DistributedSampler does, so all ranks run the same number of steps. Every item is
yielded as ``(index, sample_seed)``: the dataset seeds its augmentation with sample_seed, so a
resumed epoch that skips its first k batches reproduces the remaining batches bit for bit.
"""

from __future__ import annotations

import math
from collections.abc import Iterator

import torch
from torch.utils.data import Sampler

from core.train.rng import derive_seed


class EpochBatchSampler(Sampler[list[tuple[int, int]]]):
    """Batches of (index, sample_seed) for one rank; call :meth:`set_epoch` before iterating.

    n: dataset size; shuffle False keeps the natural order (validation). per_epoch: use only this
    many items per epoch (training: a fresh random subset each epoch; validation: a fixed subset).
    """

    def __init__(
        self,
        n: int,
        batch_size: int,
        seed: int = 0,
        shuffle: bool = True,
        rank: int = 0,
        world: int = 1,
        drop_last: bool = False,
        per_epoch: int | None = None,
    ) -> None:
        if n <= 0:
            raise ValueError("cannot sample from an empty data set")
        if batch_size <= 0:
            raise ValueError("batch size must be positive")
        self.n, self.batch_size, self.seed = n, batch_size, seed
        self.shuffle, self.rank, self.world, self.drop_last = shuffle, rank, world, drop_last
        self.size = n if per_epoch is None else max(1, min(int(per_epoch), n))
        self.epoch = 0
        self.start_batch = 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Select the epoch's order and skip its first ``start_batch`` batches (resume)."""
        self.epoch = epoch
        self.start_batch = start_batch

    def _rank_indices(self) -> list[int]:
        if self.shuffle:
            g = torch.Generator().manual_seed(derive_seed(self.seed, "order", self.epoch))
            order = torch.randperm(self.n, generator=g).tolist()[: self.size]
        elif self.size < self.n:  # a fixed subset (validation), in natural order
            g = torch.Generator().manual_seed(derive_seed(self.seed, "subset"))
            order = sorted(torch.randperm(self.n, generator=g).tolist()[: self.size])
        else:
            order = list(range(self.n))
        per_rank = math.ceil(self.size / self.world)
        padded = (order * math.ceil(per_rank * self.world / self.size))[: per_rank * self.world]
        return padded[self.rank :: self.world]

    def batches_per_epoch(self) -> int:
        per_rank = math.ceil(self.size / self.world)
        if self.drop_last:
            return max(per_rank // self.batch_size, 1)
        return math.ceil(per_rank / self.batch_size)

    def __len__(self) -> int:
        return max(self.batches_per_epoch() - self.start_batch, 0)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        idx = self._rank_indices()
        n_batches = self.batches_per_epoch()
        for b in range(self.start_batch, n_batches):
            chunk = idx[b * self.batch_size : (b + 1) * self.batch_size]
            if not chunk:
                # drop_last with fewer items than a batch: still one (short) batch
                chunk = idx[: self.batch_size]
            pos0 = self.rank + b * self.batch_size * self.world
            yield [
                (i, derive_seed(self.seed, "aug", self.epoch, pos0 + k * self.world))
                for k, i in enumerate(chunk)
            ]
