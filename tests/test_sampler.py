"""Balanced batch sampler: both classes in every batch, deterministic per epoch, resumable, DDP-sharded."""

from __future__ import annotations

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
