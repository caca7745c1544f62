"""The modality-grouped sampler (spec 2.4): a permutation whose global batches hold one modality.

A "megabatch" is one global batch: per-device batch x world size x accumulation samples. The
image and text-only megabatches come first in a shuffled order, then one final batch holding both
leftovers. Inside a full megabatch, each rank's chunk is sorted by length, longest first.
"""

from __future__ import annotations

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from llava_core.train.sampler import ModalityLengthSampler, modality_grouped_indices


def order(lengths, per_device=2, world=2, accum=1, seed=0):
    g = torch.Generator().manual_seed(seed)
    return modality_grouped_indices(lengths, per_device_batch=per_device, world_size=world, grad_accum=accum,
                                    generator=g)


def megabatches(idx, size):
    return [idx[i:i + size] for i in range(0, len(idx), size)]


lengths_st = st.lists(st.integers(min_value=1, max_value=500).flatmap(lambda n: st.sampled_from([n, -n])),
                      min_size=1, max_size=300)
shape_st = st.tuples(st.integers(1, 4), st.integers(1, 4), st.integers(1, 3))


@settings(max_examples=150, deadline=None)
@given(lengths=lengths_st, shape=shape_st, seed=st.integers(0, 10_000))
def test_every_index_exactly_once(lengths, shape, seed):
    per_device, world, accum = shape
    assert sorted(order(lengths, per_device, world, accum, seed)) == list(range(len(lengths)))


@settings(max_examples=150, deadline=None)
@given(lengths=lengths_st, shape=shape_st, seed=st.integers(0, 10_000))
def test_full_megabatches_hold_one_modality_and_sorted_rank_chunks(lengths, shape, seed):
    per_device, world, accum = shape
    size = per_device * world * accum
    idx = order(lengths, per_device, world, accum, seed)
    n_mm = sum(x > 0 for x in lengths)
    n_lang = len(lengths) - n_mm
    if n_mm and n_lang:
        # Each modality keeps its last (possibly full) megabatch for the final mixed batch.
        n_full = (n_mm - 1) // size + (n_lang - 1) // size
    else:
        n_full = len(lengths) // size  # single modality: plain length grouping, cut into megabatches
    chunk = size // world
    for mb in megabatches(idx, size)[:n_full]:
        assert len(mb) == size
        assert len({lengths[i] > 0 for i in mb}) == 1, "a full global batch mixes modalities"
        for r in range(world):
            part = [abs(lengths[i]) for i in mb[r * chunk:(r + 1) * chunk]]
            assert part == sorted(part, reverse=True), "a rank's chunk is not sorted longest first"
    if n_mm and n_lang:
        tail = idx[n_full * size:]
        assert {lengths[i] > 0 for i in tail} == {True, False}, "the final batch holds both leftovers"
        assert [abs(lengths[i]) for i in tail] == sorted((abs(lengths[i]) for i in tail), reverse=True)


def test_modalities_interleave_at_megabatch_granularity():
    lengths = [10 + i % 7 for i in range(40)] + [-(5 + i % 3) for i in range(40)]
    idx = order(lengths, per_device=2, world=2, accum=2, seed=3)
    kinds = [lengths[mb[0]] > 0 for mb in megabatches(idx, 8)[:8]]
    assert True in kinds and False in kinds  # shuffled together, not all images first


def test_single_modality_falls_back_to_length_grouping():
    for lengths in ([5, 9, 1, 7, 3, 8, 2, 6, 4], [-5, -9, -1, -7, -3, -8, -2, -6, -4]):
        idx = order(lengths, per_device=2, world=1, accum=2, seed=1)
        assert sorted(idx) == list(range(len(lengths)))
        for mb in megabatches(idx, 4):
            part = [abs(lengths[i]) for i in mb]
            assert part == sorted(part, reverse=True)


def test_zero_lengths_are_not_dropped():
    lengths = [0, 3, -2, 0, 5, -1]
    assert sorted(order(lengths)) == list(range(6))


def test_rank_chunks_balance_total_length():
    lengths = [100, 90, 80, 70, 10, 9, 8, 7]  # one megabatch, two ranks of 4
    idx = order(lengths, per_device=4, world=2, accum=1)
    totals = [sum(lengths[i] for i in idx[:4]), sum(lengths[i] for i in idx[4:])]
    assert abs(totals[0] - totals[1]) <= 20  # greedy: 100+70+9+8 vs 90+80+10+7


def test_deterministic_per_seed_and_epoch():
    lengths = [(i % 13 + 1) * (1 if i % 5 else -1) for i in range(200)]
    s = ModalityLengthSampler(lengths, per_device_batch=4, world_size=2, grad_accum=2, seed=42)
    first = list(s)
    assert list(s) == first, "the order must not change without set_epoch (resume and every rank rely on it)"
    s.set_epoch(1)
    second = list(s)
    assert second != first
    again = ModalityLengthSampler(lengths, per_device_batch=4, world_size=2, grad_accum=2, seed=42)
    again.set_epoch(1)
    assert list(again) == second
    other = ModalityLengthSampler(lengths, per_device_batch=4, world_size=2, grad_accum=2, seed=7)
    assert list(other) != first
    assert len(s) == len(lengths)
