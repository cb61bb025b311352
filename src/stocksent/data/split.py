"""Seeded train / validation / test split, optionally keeping duplicate texts together."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..config import DataConfig
from ..errors import StocksentError

SPLITS = ("train", "val", "test")


def split_messages(tokens: Sequence[list[str]], cfg: DataConfig,
                   test_fraction: float | None = None) -> dict[str, np.ndarray]:
    """The seeded split of tokenised messages that a data config asks for (with group_duplicates,
    messages of the same tokens together); `test_fraction` 0 holds out validation only."""
    groups = [" ".join(t) for t in tokens] if cfg.group_duplicates else None
    test = cfg.test_fraction if test_fraction is None else test_fraction
    return split_indices(len(tokens), cfg.seed, cfg.val_fraction, test, groups)


def split_indices(n: int, seed: int, val_fraction: float = 0.1, test_fraction: float = 0.1,
                  groups: Sequence[str] | None = None) -> dict[str, np.ndarray]:
    """Shuffle 0..n-1 with `seed` and cut it as the article does: the first 80% train, then the
    rest halved into validation and test. With `groups`, equal keys land in the same split.
    A test_fraction of 0 leaves the test split empty (a validation set held out of training data)."""
    rng = np.random.default_rng(seed)
    if groups is None:
        order = rng.permutation(n)
        cut_train = int(n * (1 - val_fraction - test_fraction))
        cut_val = cut_train + int((n - cut_train) * val_fraction / (val_fraction + test_fraction))
        parts = np.split(order, [cut_train, cut_val])
    else:
        parts = _grouped(groups, rng, val_fraction, test_fraction)
    result = {name: np.sort(part) for name, part in zip(SPLITS, parts)}
    empty = [name for name, part in result.items() if len(part) == 0 and (name != "test" or test_fraction)]
    if empty:
        raise StocksentError(f"too few messages ({n}) to make a {'/'.join(empty)} split")
    return result


def _grouped(groups: Sequence[str], rng: np.random.Generator, val_fraction: float,
             test_fraction: float) -> list[np.ndarray]:
    # Shuffle the distinct keys, then fill train, validation and test in that order, so
    # every copy of a key goes wherever its first copy went.
    keys, inverse = np.unique(np.asarray(groups, dtype=object), return_inverse=True)
    key_order = rng.permutation(len(keys))
    rank = np.empty(len(keys), dtype=np.int64)
    rank[key_order] = np.arange(len(keys))
    order = np.argsort(rank[inverse], kind="stable")  # messages, grouped, in shuffled key order
    n = len(groups)
    cum = np.arange(1, n + 1)
    # A message goes to train while the count up to the end of its group is within 80%.
    group_end = _group_end_positions(rank[inverse][order])
    train_cut = int(n * (1 - val_fraction - test_fraction))
    val_cut = train_cut + int((n - train_cut) * val_fraction / (val_fraction + test_fraction))
    where = np.where(cum[group_end] <= train_cut, 0, np.where(cum[group_end] <= val_cut, 1, 2))
    return [order[where == k] for k in range(3)]


def _group_end_positions(sorted_keys: np.ndarray) -> np.ndarray:
    """For each position in a key-sorted array, the position of the last element of its run."""
    n = len(sorted_keys)
    is_last = np.ones(n, dtype=bool)
    is_last[:-1] = sorted_keys[1:] != sorted_keys[:-1]
    last_positions = np.flatnonzero(is_last)
    run_index = np.cumsum(np.concatenate([[0], is_last[:-1]]))
    return last_positions[run_index]
