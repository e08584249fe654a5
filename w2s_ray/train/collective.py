"""Whole-batch statistics when a batch is split over data-parallel ranks.

A loss that looks at the whole batch (logconf's balance threshold) must see every rank's
rows, or a run on N workers would train a different model than one on a single worker.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

Gather = Callable[[torch.Tensor], torch.Tensor]  # this rank's rows -> every rank's rows


def local_rows(rows: torch.Tensor) -> torch.Tensor:
    """One process holds the whole batch."""
    return rows


def all_rows(rows: torch.Tensor) -> torch.Tensor:
    """Concatenate every rank's rows (ranks may hold different numbers; none is fine).

    Gathered values carry no gradient: they are statistics, not part of the graph.
    """
    import torch.distributed as dist

    rows = rows.detach()
    world = dist.get_world_size()
    count = torch.tensor([rows.shape[0]], device=rows.device)
    counts = [torch.zeros_like(count) for _ in range(world)]
    dist.all_gather(counts, count)
    longest = int(max(c.item() for c in counts))
    padded = torch.zeros((longest, *rows.shape[1:]), dtype=rows.dtype, device=rows.device)
    padded[: rows.shape[0]] = rows
    parts = [torch.empty_like(padded) for _ in range(world)]
    dist.all_gather(parts, padded)
    return torch.cat([part[: int(c.item())] for part, c in zip(parts, counts, strict=True)])


def no_rows(gather: Gather) -> Gather:
    """For a rank whose only row is a zero-weight filler: it must join, adding nothing."""
    return lambda rows: gather(rows[:0])
