"""Batching: length-bucketed batches of encoded messages, padded to the batch's longest.

    lengths  3 9 4 12 3 8 ...        sort by length (ties shuffled), cut into batches,
    batches  [3 3 4] [8 9 12] ...    shuffle the batch order; pad each batch on the right:

    tokens   w w w 0        lengths  3
             w w w w                 4     -> the model reads position length-1
"""
from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch


def bucket_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Index arrays of similar-length messages, in random order; the last batch may be short."""
    shuffled = rng.permutation(len(lengths))
    by_length = shuffled[np.argsort(lengths[shuffled], kind="stable")]
    batches = [by_length[i:i + batch_size] for i in range(0, len(by_length), batch_size)]
    return [batches[i] for i in rng.permutation(len(batches))]


def ordered_batches(n: int, batch_size: int) -> list[np.ndarray]:
    """Consecutive batches in file order, the last one partial (never dropped)."""
    return [np.arange(i, min(i + batch_size, n)) for i in range(0, n, batch_size)]


def pad_batch(encoded: Sequence[np.ndarray], index: np.ndarray,
              pad_to: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad the chosen messages with 0: tokens (B, T) and lengths (B,)."""
    lengths = np.fromiter((len(encoded[i]) for i in index), dtype=np.int64, count=len(index))
    width = pad_to or int(lengths.max())
    tokens = np.zeros((len(index), width), dtype=np.int64)
    for row, i in enumerate(index):
        message = encoded[i][:width]
        tokens[row, : len(message)] = message
    return torch.from_numpy(tokens), torch.from_numpy(np.minimum(lengths, width))


def by_length(lengths: np.ndarray, batch_size: int) -> list[np.ndarray]:
    """Index arrays of batch_size messages of similar length, shortest first."""
    order = np.argsort(lengths, kind="stable")
    return [order[chunk] for chunk in ordered_batches(len(order), batch_size)]


def score_by_length(score: Callable[[torch.Tensor, torch.Tensor], np.ndarray],
                    encoded: Sequence[np.ndarray], batch_size: int = 512) -> np.ndarray:
    """Apply `score(tokens, lengths) -> (B,) array` to every message in batches of similar
    length (little padding), and return the scores in input order."""
    lengths = np.fromiter((len(e) for e in encoded), dtype=np.int64, count=len(encoded))
    out = np.empty(len(encoded), dtype=np.float32)
    for index in by_length(lengths, batch_size):
        out[index] = score(*pad_batch(encoded, index))
    return out
