"""Balanced batch sampler: every batch holds both classes (AIRL (Parihar), §III-E: SupCon needs
positives and negatives in each batch; docs/design.md, "Loss").

Each batch takes ``ceil(B/2)`` real and ``floor(B/2)`` fake indices (alternating which class gets the
extra one when ``B`` is odd). The two classes are shuffled by a generator seeded with
``(seed, epoch, class)``. An epoch holds ``ceil(N / (B * world_size))`` batches, as many as an
unbalanced sampler would, so it draws about ``N / 2`` indices from **each** class:

- balanced data (equal classes): every index once per epoch (the last batch filled from a reshuffle);
- the smaller class is cycled (re-shuffled on each wrap), every index drawn ``floor(k)`` or ``ceil(k)``
  times for ``k = draws / class size``;
- the larger class is **subsampled**: each index at most once per epoch, and an unbalanced epoch does
  *not* cover it (e.g. 37 real / 101 fake, ``B = 8``: 72 of the 101 fakes per epoch). Each epoch reshuffles, so
  successive epochs see different subsets of it.

Under DDP every rank builds the same global batches of ``B * world_size`` and takes its own slice of each
class, so every rank's batch is balanced too and no rank sees another's samples. ``state_dict`` /
``load_state_dict`` record the epoch and how many batches were already consumed, so an interrupted epoch
resumes at the next batch with exactly the same order.

With ``strata`` (one name per index, e.g. the source dataset), each class is also balanced across its
strata: the class's stream takes its strata in turn, each stratum cycled or subsampled as above, so every
batch holds about as many reals (and fakes) of each source, whatever the sources' sizes. A large source
then cannot drown a small one, and no source's kind of real image (a video frame, a photograph) is rare
enough in training to come to mean "fake".
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence

import numpy as np
from torch.utils.data import Sampler

from fakescope.errors import InputError

__all__ = ["BalancedBatchSampler"]


class BalancedBatchSampler(Sampler[list[int]]):
    def __init__(
        self,
        labels: Sequence[int],
        batch_size: int,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        strata: Sequence[str] | None = None,
    ) -> None:
        if batch_size < 2:
            raise InputError(f"balanced batches need batch_size >= 2 (got {batch_size})")
        labels_arr = np.asarray(labels, dtype=np.int64)
        self.real = np.flatnonzero(labels_arr == 0)
        self.fake = np.flatnonzero(labels_arr == 1)
        if len(self.real) == 0 or len(self.fake) == 0:
            raise InputError(
                f"training data must hold both classes (got {len(self.real)} real, {len(self.fake)} fake)"
            )
        if not 0 <= rank < world_size:
            raise ValueError(f"rank {rank} outside world_size {world_size}")
        self.batch_size = int(batch_size)
        self.seed = int(seed)
        self.rank = int(rank)
        self.world_size = int(world_size)
        self.epoch = 0
        self.start_batch = 0
        self.num_samples = len(labels_arr)
        self.strata: dict[int, list[np.ndarray]] = {}
        if strata is not None:
            if len(strata) != len(labels_arr):
                raise ValueError(f"{len(strata)} strata for {len(labels_arr)} labels")
            names = np.asarray([str(s) for s in strata])
            for cls, pool in ((0, self.real), (1, self.fake)):
                self.strata[cls] = [pool[names[pool] == n] for n in sorted(set(names[pool].tolist()))]

    def __len__(self) -> int:
        return math.ceil(self.num_samples / (self.batch_size * self.world_size))

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        """Select the epoch (its shuffle) and the first batch to yield (for mid-epoch resume)."""
        self.epoch = int(epoch)
        self.start_batch = int(start_batch)

    def state_dict(self) -> dict[str, int]:
        return {"epoch": self.epoch, "start_batch": self.start_batch, "seed": self.seed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self.set_epoch(int(state["epoch"]), int(state.get("start_batch", 0)))

    def _stream(self, pool: np.ndarray, cls: int, count: int, stratum: int | None = None) -> np.ndarray:
        """``count`` indices from ``pool``: successive independent shuffles, concatenated."""
        out = []
        wrap = 0
        key = [self.seed & 0xFFFFFFFF, self.epoch, cls] + ([] if stratum is None else [3, stratum])
        while sum(len(o) for o in out) < count:
            rng = np.random.default_rng([*key, wrap])
            out.append(pool[rng.permutation(len(pool))])
            wrap += 1
        return np.concatenate(out)[:count]

    def _class_stream(self, pool: np.ndarray, cls: int, count: int) -> np.ndarray:
        """``count`` indices of one class; with strata, the strata in turn (round robin)."""
        pools = self.strata.get(cls)
        if not pools:
            return self._stream(pool, cls, count)
        per = math.ceil(count / len(pools))
        streams = [self._stream(p, cls, per, stratum=i) for i, p in enumerate(pools)]
        return np.stack(streams, axis=1).reshape(-1)[:count]

    def _halves(self) -> list[tuple[int, int]]:
        """(real, fake) count per batch; an odd B alternates which class gets the extra one."""
        out = []
        for i in range(len(self)):
            real = (self.batch_size + (i % 2)) // 2
            out.append((real, self.batch_size - real))
        return out

    def global_batches(self) -> list[tuple[list[int], list[int]]]:
        """Every batch of this epoch before sharding: (real indices, fake indices), each
        ``world_size`` times the per-rank share."""
        halves = self._halves()
        w = self.world_size
        real = self._class_stream(self.real, 0, sum(h[0] for h in halves) * w).tolist()
        fake = self._class_stream(self.fake, 1, sum(h[1] for h in halves) * w).tolist()
        batches = []
        r = f = 0
        for hr, hf in halves:
            batches.append((real[r : r + hr * w], fake[f : f + hf * w]))
            r += hr * w
            f += hf * w
        return batches

    def __iter__(self) -> Iterator[list[int]]:
        halves = self._halves()
        for i, (real, fake) in enumerate(self.global_batches()):
            if i < self.start_batch:
                continue
            hr, hf = halves[i]
            mine = real[self.rank * hr : (self.rank + 1) * hr] + fake[self.rank * hf : (self.rank + 1) * hf]
            # Interleave the two classes (BatchNorm statistics and SupCon do not care, a reader of the
            # batch might); seeded, so the order is part of the reproducible epoch.
            order = np.random.default_rng([self.seed & 0xFFFFFFFF, self.epoch, 2, i, self.rank]).permutation(
                len(mine)
            )
            yield [int(mine[j]) for j in order]
