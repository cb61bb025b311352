"""The parts after the network: what adjusts its logits before they become probabilities.

Every part takes the network's logits of N messages (with their word ids and texts) and returns
the logits adjusted; each saves its tensors in model.safetensors under its own prefix. They run
in the order of KINDS:

    network logits -> the n-gram part (blended in, ngrams.py) -> ticker priors (shifted, priors.py)

and the calibration set (calibration.py) rides along, leaving them as they are.

A new part is one class with this interface, named in KINDS.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar, Protocol

import numpy as np
import torch

from ..config import Config
from ..data.store import split_prefix
from .calibration import CalibrationSet
from .ngrams import NgramModel
from .priors import TickerPriors


class Part(Protocol):
    prefix: ClassVar[str]  # its tensors' names start with this

    def adjust(self, logits: np.ndarray, flat: np.ndarray, lengths: np.ndarray,
               texts: Sequence[str]) -> np.ndarray:
        """(N,) float32 logits adjusted; message i is the next lengths[i] ids of `flat`, texts[i]."""
        ...

    def tensors(self) -> dict[str, torch.Tensor]:
        """What the part saves, every name under its prefix."""
        ...


KINDS: tuple[type, ...] = (NgramModel, TickerPriors, CalibrationSet)


def split_parts(state: dict[str, torch.Tensor], config: Config,
                source: str) -> tuple[dict[str, torch.Tensor], list[Part], Config]:
    """A saved state's network tensors, its parts (in KINDS order), and the config as they score
    together (each kind's `restore` may amend it)."""
    parts = []
    for kind in KINDS:
        state, mine = split_prefix(state, kind.prefix)
        part, config = kind.restore(mine, config, source)
        if part is not None:
            parts.append(part)
    return state, parts, config


def with_part(parts: Sequence[Part], new: Part) -> list[Part]:
    """`parts` with `new` in its kind's place, replacing one of its kind."""
    kept = [part for part in parts if type(part) is not type(new)]
    return sorted([*kept, new], key=lambda part: KINDS.index(type(part)))


def find_part(parts: Sequence[Part], kind: type) -> Part | None:
    return next((part for part in parts if isinstance(part, kind)), None)


def adjust(parts: Sequence[Part], logits: np.ndarray, flat: np.ndarray, lengths: np.ndarray,
           texts: Sequence[str]) -> np.ndarray:
    for part in parts:
        logits = part.adjust(logits, flat, lengths, texts)
    return logits


def part_tensors(parts: Sequence[Part]) -> dict[str, torch.Tensor]:
    return {name: tensor for part in parts for name, tensor in part.tensors().items()}


def network_state(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """A saved state without any part's tensors: the network's alone."""
    for kind in KINDS:
        state = split_prefix(state, kind.prefix)[0]
    return state
