"""Upstream's ``group_by_modality_length`` sampler, written from its description (spec 2.4).

Image and text-only samples are shuffled apart and cut into megabatches of one global batch;
inside a megabatch samples are sorted by length and dealt to ranks in chunks of similar total
length. Megabatches of both modalities are shuffled together, so each global batch holds one
modality; the two leftovers form one final mixed batch.
"""

from __future__ import annotations

import torch


def _split_to_even_chunks(indices: list[int], lengths: list[int], num_chunks: int) -> list[list[int]]:
    if len(indices) % num_chunks:
        return [indices[i::num_chunks] for i in range(num_chunks)]
    per_chunk = len(indices) // num_chunks
    chunks: list[list[int]] = [[] for _ in range(num_chunks)]
    totals = [0] * num_chunks
    for idx in indices:
        # Greedy: the lightest chunk that still has room.
        best = min((c for c in range(num_chunks) if len(chunks[c]) < per_chunk), key=lambda c: totals[c])
        chunks[best].append(idx)
        totals[best] += lengths[idx]
    return chunks


def _megabatches(indices: list[int], lengths: list[int], world_size: int, megabatch: int,
                 generator: torch.Generator) -> list[list[int]]:
    perm = [indices[i] for i in torch.randperm(len(indices), generator=generator).tolist()]
    out = []
    for start in range(0, len(perm), megabatch):
        mb = sorted(perm[start:start + megabatch], key=lambda i: lengths[i], reverse=True)
        out.append([i for chunk in _split_to_even_chunks(mb, lengths, world_size) for i in chunk])
    return out


def modality_grouped_indices(lengths: list[int], *, per_device_batch: int, world_size: int,
                             grad_accum: int, generator: torch.Generator) -> list[int]:
    """An epoch's sample order (see the module docstring). ``lengths`` are signed word counts."""
    megabatch = per_device_batch * world_size * grad_accum
    abs_len = [abs(x) for x in lengths]
    # A zero length has no sign (upstream asserts it never occurs): count it as multimodal, so
    # that no sample is ever dropped from the epoch.
    mm = [i for i, x in enumerate(lengths) if x >= 0]
    lang = [i for i, x in enumerate(lengths) if x < 0]
    if not mm or not lang:  # a single modality: plain length grouping
        return [i for mb in _megabatches(list(range(len(lengths))), abs_len, world_size, megabatch, generator)
                for i in mb]
    mm_mbs = _megabatches(mm, abs_len, world_size, megabatch, generator)
    lang_mbs = _megabatches(lang, abs_len, world_size, megabatch, generator)
    last = mm_mbs[-1] + lang_mbs[-1]
    full = mm_mbs[:-1] + lang_mbs[:-1]
    order = torch.randperm(len(full), generator=generator).tolist()
    result = [full[i] for i in order]
    if last:
        result.append(sorted(last, key=lambda i: abs_len[i], reverse=True))
    return [i for mb in result for i in mb]


class ModalityLengthSampler(torch.utils.data.Sampler):
    """A sampler yielding :func:`modality_grouped_indices`; a new order every epoch.

    The order depends only on ``seed`` and the epoch given to :meth:`set_epoch` (the convention
    of ``DistributedSampler``): iterating twice without ``set_epoch`` repeats the order. So every
    rank computes the same global order, and a run resumed mid-epoch recomputes the exact order
    of that epoch before the Trainer skips the batches it has already seen. ``LlavaTrainer``
    calls ``set_epoch`` itself at every epoch start, also on resumed multi-process runs where
    accelerate's wrappers do not forward it.
    """

    def __init__(self, lengths: list[int], *, per_device_batch: int, world_size: int, grad_accum: int, seed: int):
        self.lengths, self.seed, self.epoch = lengths, seed, 0
        self.per_device_batch, self.world_size, self.grad_accum = per_device_batch, world_size, grad_accum

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.lengths)

    def __iter__(self):
        g = torch.Generator().manual_seed(self.seed + self.epoch)
        return iter(modality_grouped_indices(self.lengths, per_device_batch=self.per_device_batch,
                                             world_size=self.world_size, grad_accum=self.grad_accum, generator=g))
