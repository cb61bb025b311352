"""Dropout whose mask is cheap to draw on a CPU.

torch's CPU dropout draws one Bernoulli sample per unit from its Mersenne Twister, which took a
fifth of the default model's training steps (bench/hotspots.py profiles them; docs/performance.md
has the figures). Here each unit reads 16 bits of one 64-bit draw, a quarter of the draws, from the same
seeded generator:

    int64 draw:  [ 16 bits | 16 bits | 16 bits | 16 bits ]  -> four units
    keep a unit when its 16 bits, read as a number in [0, 65536), fall below round(keep * 65536)

The kept units are scaled by 65536 / that cut, the inverse of the exact keep rate, so the
expected output equals the input as with nn.Dropout. Off the CPU it is nn.functional.dropout;
in eval mode it passes its input through.
"""
from __future__ import annotations

import math

import torch
from torch import nn

LEVELS = 1 << 16  # values 16 random bits can take


def keep_mask(shape: torch.Size | tuple[int, ...], keep: float,
              generator: torch.Generator | None = None) -> tuple[torch.Tensor, float]:
    """A bool mask of `shape` whose entries are True with probability ~`keep` (to 1 / 65536),
    and the scale that makes the kept units' expectation exact; drawn from `generator` (None:
    torch's default one)."""
    cut = min(LEVELS, max(1, round(keep * LEVELS)))
    if cut == LEVELS:  # the comparison below could not say "all": 32768 is no int16
        return torch.ones(shape, dtype=torch.bool), 1.0
    count = math.prod(shape)
    draws = torch.randint(-(1 << 63), (1 << 63) - 1, ((count + 3) // 4,), dtype=torch.int64, generator=generator)
    bits = draws.view(torch.int16)[:count].view(shape)  # signed: uniform on [-32768, 32768)
    return bits < cut - LEVELS // 2, LEVELS / cut


class Dropout(nn.Module):
    """nn.Dropout(p) with the mask above on the CPU; `generator` draws its masks (None: torch's
    default one), so that networks trained on threads of their own draw theirs apart."""

    def __init__(self, p: float):
        super().__init__()
        self.p = p
        self.generator: torch.Generator | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training or self.p == 0.0:
            return x
        if x.device.type != "cpu":
            return nn.functional.dropout(x, self.p, training=True)
        keep, scale = keep_mask(x.shape, 1.0 - self.p, self.generator)
        return x * keep.to(x.dtype).mul_(scale)

    def extra_repr(self) -> str:
        return f"p={self.p}"
