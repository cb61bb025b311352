"""The n-gram part: a linear model over which word 1-3 grams a message holds, beside the network.

It is NBSVM's recipe (Wang & Manning 2012, their NBLR) on the network's own word ids: each n-gram
present (0 / 1) is scaled by its naive-Bayes log-count ratio, and a logistic regression with an
L2 penalty is fitted on those features once the network is trained. The message's logit is then
(1 - share) * the network's + share * this part's. A bag of n-grams and an LSTM err on different
messages, so their blend errs less than either (docs/experiments.md gives the runs).

    fit_ngrams(ids per message, labels, model config, train config[, prior part]) -> NgramModel
    NgramModel.logits(flat ids, lengths) -> (N,) logits;  .blend(network logits, flat, lengths)

Scoring is numpy alone, so it runs the same beside every scorer (torch, folded, onnxruntime).
An n-gram is one int64: its length in the top bits, then each word id in ID_BITS bits.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch
from scipy import sparse, special

from ..config import Config, ModelConfig, TrainConfig
from ..errors import StocksentError
from ..text.vocab import UNKNOWN
from .lbfgs import minimise
from .metrics import label_weights

PREFIX = "ngrams."  # the part's tensors sit in model.safetensors under this prefix
ID_BITS = 20
MAX_VOCAB = 1 << ID_BITS
LONGEST = 3  # n-grams longer than this would not fit in an int64 key
ITERATIONS = 100  # of L-BFGS: to the optimum (bench/ngram_solver.py: the loss; docs/performance.md: the accuracy)


def ngram_keys(flat: np.ndarray, lengths: np.ndarray, longest: int) -> tuple[np.ndarray, np.ndarray]:
    """(message index, n-gram key) of every 1..`longest`-gram in each message, each pair once;
    message i is the next lengths[i] ids of `flat`."""
    flat, lengths = np.asarray(flat, dtype=np.int64), np.asarray(lengths, dtype=np.int64)
    row = np.repeat(np.arange(len(lengths)), lengths)
    left = np.repeat(lengths, lengths) - (np.arange(len(flat)) - np.repeat(np.cumsum(lengths) - lengths, lengths))
    rows, keys = [], []
    for n in range(1, longest + 1):
        at = np.flatnonzero(left >= n)  # an n-gram starts here and ends inside the message
        key = np.full(len(at), n, dtype=np.int64)
        for j in range(n):
            key = (key << ID_BITS) | flat[at + j]
        rows.append(row[at])
        keys.append(key)
    rows, keys = np.concatenate(rows), np.concatenate(keys)
    order = np.lexsort((keys, rows))
    rows, keys = rows[order], keys[order]
    first = np.ones(len(keys), dtype=bool)
    first[1:] = (rows[1:] != rows[:-1]) | (keys[1:] != keys[:-1])
    return rows[first], keys[first]


@dataclass
class NgramModel:
    """A part after the network (parts.py): blends its logits into the network's."""

    prefix: ClassVar[str] = PREFIX
    keys: np.ndarray  # (F,) sorted int64 n-gram keys
    weights: np.ndarray  # (F,) float32: naive-Bayes ratio times the regression's coefficient
    bias: float
    longest: int
    share: float  # of the blended logit

    def logits(self, flat: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """(N,) float32 logits of this part alone."""
        rows, keys = ngram_keys(flat, lengths, self.longest)
        return (self.bias + np.bincount(rows, self._weights_of(keys), minlength=len(lengths))).astype(np.float32)

    def blend(self, network: np.ndarray, flat: np.ndarray, lengths: np.ndarray) -> np.ndarray:
        """The model's logits: the network's and this part's, mixed by `share`."""
        return ((1 - self.share) * network + self.share * self.logits(flat, lengths)).astype(np.float32)

    def adjust(self, logits: np.ndarray, flat: np.ndarray, lengths: np.ndarray,
               texts: Sequence[str]) -> np.ndarray:
        return self.blend(logits, flat, lengths)

    def _weights_of(self, keys: np.ndarray) -> np.ndarray:
        """Each key's weight; 0 for n-grams the part does not hold."""
        if not len(self.keys):
            return np.zeros(len(keys))
        at = np.minimum(np.searchsorted(self.keys, keys), len(self.keys) - 1)
        return np.where(self.keys[at] == keys, self.weights[at], 0.0)

    def plus(self, other: "NgramModel") -> "NgramModel":
        """One part whose logits are this part's plus `other`'s (the union of their n-grams, the
        weights of those in both added), at `other`'s share."""
        keys = np.union1d(self.keys, other.keys)
        weights = np.zeros(len(keys), dtype=np.float32)
        for part in (self, other):
            weights[np.searchsorted(keys, part.keys)] += part.weights
        return NgramModel(keys, weights, self.bias + other.bias, max(self.longest, other.longest), other.share)

    def tensors(self) -> dict[str, torch.Tensor]:
        return {f"{PREFIX}keys": torch.from_numpy(self.keys.copy()),
                f"{PREFIX}weights": torch.from_numpy(self.weights.copy()),
                f"{PREFIX}bias": torch.tensor([self.bias], dtype=torch.float32)}

    @classmethod
    def from_tensors(cls, tensors: dict[str, torch.Tensor], model: ModelConfig, source: str) -> "NgramModel":
        try:
            keys, weights = tensors[f"{PREFIX}keys"].numpy(), tensors[f"{PREFIX}weights"].numpy()
            bias = float(tensors[f"{PREFIX}bias"].reshape(-1)[0])
        except (KeyError, IndexError):
            raise StocksentError(f"{source}: its n-gram part is incomplete") from None
        except TypeError:  # a dtype numpy does not hold, such as bfloat16
            raise StocksentError(f"{source}: its n-gram part is damaged (tensors of the wrong type)") from None
        if keys.dtype != np.int64 or keys.shape != weights.shape or np.any(keys[1:] <= keys[:-1]):
            raise StocksentError(f"{source}: its n-gram part is damaged (keys unsorted or not one per weight)")
        return cls(keys, weights.astype(np.float32), bias, model.ngrams, model.ngram_share)

    @classmethod
    def restore(cls, tensors: dict[str, torch.Tensor], config: Config,
                source: str) -> tuple["NgramModel | None", Config]:
        """The part a saved state's `tensors` hold, and the config as the model then scores: a
        directory saved mid-training, before the part was fitted, scores as the network so far."""
        if not config.model.ngrams:
            if tensors:
                raise StocksentError(f"{source}: its weights hold an n-gram part that its config does not name")
            return None, config
        if not tensors:
            return None, config.override("model", ngrams=0)
        return cls.from_tensors(tensors, config.model, source), config


def flat_ids(encoded: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Messages' id arrays as one flat array and their lengths (an empty message reads as one
    unknown word, as the classifier encodes it)."""
    encoded = [e if len(e) else np.full(1, UNKNOWN, dtype=np.int64) for e in encoded]
    lengths = np.fromiter(map(len, encoded), dtype=np.int64, count=len(encoded))
    return (np.concatenate(encoded) if encoded else np.zeros(0, np.int64)), lengths


def check_fits(model: ModelConfig) -> None:
    """A config whose n-gram part cannot be keyed is refused before anything trains."""
    if model.ngrams and model.vocab_size > MAX_VOCAB:
        raise StocksentError(f"the n-gram part takes vocabularies of up to {MAX_VOCAB} words, not "
                             f"{model.vocab_size}; raise min_freq or set ngrams to 0")


def fit_ngrams(encoded: list[np.ndarray], labels: np.ndarray, model: ModelConfig, train: TrainConfig,
               prior: NgramModel | None = None) -> NgramModel:
    """Fit the part on training messages (word ids) and their 0 / 1 labels; with a `prior` part
    (a trained model's, on the same word ids), fit corrections to its logits, which the penalty
    pulls to none, and return the prior plus them."""
    if not 1 <= model.ngrams <= LONGEST:
        raise StocksentError(f"ngrams must be between 1 and {LONGEST}")
    check_fits(model)
    rows, keys = ngram_keys(*flat_ids(encoded), model.ngrams)
    table, column, counts = np.unique(keys, return_inverse=True, return_counts=True)
    kept = counts >= train.ngram_min_count
    table, remap = table[kept], np.cumsum(kept) - 1
    rows, column = rows[kept[column]], remap[column[kept[column]]]
    ratio = _log_count_ratio(column, labels[rows], len(table))
    x = sparse.csr_matrix((ratio[column].astype(np.float64), (rows, column)), shape=(len(encoded), len(table)))
    offset = None if prior is None else prior.logits(*flat_ids(encoded)).astype(np.float64)
    coef, bias = _logistic(x, np.asarray(labels, dtype=np.float64), train.ngram_c, _weights(labels, train.balanced),
                           offset)
    fitted = NgramModel(table, (coef * ratio).astype(np.float32), bias, model.ngrams, model.ngram_share)
    return fitted if prior is None else prior.plus(fitted)


def _log_count_ratio(column: np.ndarray, positive: np.ndarray, features: int) -> np.ndarray:
    """r = log((p / |p|) / (q / |q|)), p and q the add-one counts of messages holding each n-gram
    among the positive and the negative ones."""
    p = 1.0 + np.bincount(column[positive == 1], minlength=features)
    q = 1.0 + np.bincount(column[positive == 0], minlength=features)
    return np.log((p / p.sum()) / (q / q.sum())).astype(np.float32)


def _weights(labels: np.ndarray, balanced: bool) -> np.ndarray | None:
    """Each message's weight in the fit when balanced, else None (all 1)."""
    if not balanced:
        return None
    labels = np.asarray(labels, dtype=np.int64)
    return label_weights(labels)[labels].astype(np.float64)


def _logistic(x: sparse.csr_matrix, y: np.ndarray, c: float, weights: np.ndarray | None = None,
              offset: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    """Coefficients and intercept minimising summed (weighted) log-loss + |w|^2 / (2 C), by
    L-BFGS (lbfgs.py; the intercept is not penalised, as scikit-learn's); `offset`: each message's
    logit before them."""
    weights = np.ones_like(y) if weights is None else weights
    offset = np.zeros_like(y) if offset is None else offset
    xt = x.T.tocsr()  # the gradient's product, in the layout that makes it one pass

    def loss_and_gradient(params: np.ndarray) -> tuple[float, np.ndarray]:
        w, b = params[:-1], params[-1]
        z = x @ w + b + offset
        loss = weights @ (np.logaddexp(0.0, z) - y * z) + w @ w / (2 * c)
        error = weights * (special.expit(z) - y)
        return float(loss), np.append(xt @ error + w / c, error.sum())

    found = minimise(loss_and_gradient, np.zeros(x.shape[1] + 1), ITERATIONS)
    return found[:-1].astype(np.float32), float(found[-1])
