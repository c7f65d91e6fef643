"""Balanced batch sampler: both classes in every batch, deterministic per epoch, resumable, DDP-sharded."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest

from fakescope.data.sampler import BalancedBatchSampler
from fakescope.errors import InputError

LABELS = [0] * 37 + [1] * 101  # unbalanced on purpose


@pytest.mark.parametrize("batch_size", [2, 5, 8])
def test_every_batch_holds_both_classes(batch_size):
    s = BalancedBatchSampler(LABELS, batch_size, seed=3)
    batches = list(s)
    assert len(batches) == len(s) == int(np.ceil(len(LABELS) / batch_size))
    for b in batches:
        assert len(b) == batch_size
        labels = {LABELS[i] for i in b}
        assert labels == {0, 1}
    fakes = [i for b in batches for i in b if LABELS[i] == 1]
    assert len(set(fakes)) == len(fakes)  # the larger class is not repeated within an epoch
    reals = [i for b in batches for i in b if LABELS[i] == 0]
    assert set(reals) == set(range(37))  # the smaller class is cycled, all of it used


def test_deterministic_per_epoch_and_different_across_epochs():
    a = BalancedBatchSampler(LABELS, 8, seed=1)
    b = BalancedBatchSampler(LABELS, 8, seed=1)
    a.set_epoch(2)
    b.set_epoch(2)
    assert list(a) == list(b)
    b.set_epoch(3)
    assert list(a) != list(b)


def test_resume_from_a_position_continues_the_same_order():
    s = BalancedBatchSampler(LABELS, 8, seed=1)
    s.set_epoch(4)
    full = list(s)
    r = BalancedBatchSampler(LABELS, 8, seed=1)
    r.load_state_dict({"epoch": 4, "start_batch": 7})
    assert list(r) == full[7:]


def test_ddp_ranks_get_disjoint_balanced_shards():
    shards = []
    for rank in range(2):
        s = BalancedBatchSampler(LABELS, 6, seed=0, rank=rank, world_size=2)
        s.set_epoch(1)
        shards.append(list(s))
    assert len(shards[0]) == len(shards[1])
    for b0, b1 in zip(*shards, strict=True):
        assert {LABELS[i] for i in b0} == {0, 1} == {LABELS[i] for i in b1}
        assert not set(b0) & set(b1)


def test_one_class_only_is_a_clear_error():
    with pytest.raises(InputError, match="both classes.*0 real"):
        BalancedBatchSampler([1, 1, 1], 2)


@pytest.mark.parametrize(("labels", "batch_size", "world_size"),
                         [(LABELS, 8, 1), (LABELS, 5, 1), ([0] * 40 + [1] * 40, 8, 1), (LABELS, 4, 2)])  # fmt: skip
def test_epoch_coverage_is_what_the_docstring_says(labels, batch_size, world_size):
    # The module docstring: an epoch has ceil(N / (B * world_size)) batches and draws half of them
    # from each class, about N/2 samples per class. The smaller class is cycled (every index drawn
    # floor(k) or ceil(k) times); the larger class is subsampled, each index at most once (it is NOT
    # covered once per epoch when the classes are unbalanced); balanced data is covered exactly once
    # (up to the last batch's fill).
    n = len(labels)
    lab = np.asarray(labels)
    draws = {0: [], 1: []}
    n_batches = 0
    for rank in range(world_size):
        s = BalancedBatchSampler(labels, batch_size, seed=7, rank=rank, world_size=world_size)
        assert len(s) == int(np.ceil(n / (batch_size * world_size)))
        for b in s:
            n_batches += 1
            for i in b:
                draws[int(lab[i])].append(i)
    per_class = n_batches * batch_size / 2
    assert abs(len(draws[0]) - per_class) <= n_batches and abs(len(draws[1]) - per_class) <= n_batches
    for cls in (0, 1):
        pool = np.flatnonzero(lab == cls)
        counts = np.bincount(draws[cls], minlength=n)[pool]
        k = len(draws[cls]) / len(pool)
        assert counts.min() >= np.floor(k) and counts.max() <= np.ceil(k)
    small, large = sorted((0, 1), key=lambda c: (lab == c).sum())
    if (lab == small).sum() < (lab == large).sum():
        large_counts = np.bincount(draws[large], minlength=n)[lab == large]
        assert large_counts.max() == 1 and (large_counts == 0).any()  # subsampled, not covered
        assert np.bincount(draws[small], minlength=n)[lab == small].min() >= 1  # all of it, cycled


def test_strata_balance_each_class_across_sources_in_every_batch():
    # 3000 + 300 reals of two sources, fakes from three: the small sources must not be drowned.
    labels = [0] * 3000 + [0] * 300 + [1] * 2000 + [1] * 150 + [1] * 100
    strata = ["dfdc"] * 3000 + ["ffhq"] * 300 + ["dfdc"] * 2000 + ["ffhq"] * 150 + ["ciplab"] * 100
    sampler = BalancedBatchSampler(labels, 24, seed=3, strata=strata)
    counts = []
    for batch in sampler:
        per = Counter((labels[i], strata[i]) for i in batch)
        counts.append(per)
        assert per[(0, "dfdc")] == per[(0, "ffhq")] == 6
        assert {per[(1, s)] for s in ("dfdc", "ffhq", "ciplab")} == {4}
    # Without strata the same data gives the small sources their natural (tiny) share.
    plain = next(iter(BalancedBatchSampler(labels, 24, seed=3)))
    assert sum(strata[i] == "ciplab" for i in plain) < 4


def test_stratified_epochs_resume_mid_epoch_in_the_same_order():
    labels = [0, 1] * 50
    strata = ["a", "a", "b", "b"] * 25
    full = list(BalancedBatchSampler(labels, 8, seed=1, strata=strata))
    resumed = BalancedBatchSampler(labels, 8, seed=1, strata=strata)
    resumed.set_epoch(0, start_batch=5)
    assert list(resumed) == full[5:]
