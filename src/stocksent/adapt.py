"""Adaptation to a new market, first step: the n-gram part learns the market's words from the
model's own guesses for its messages, their tags unread (self-training); the networks stay as
they are. The second step, ticker priors, is priors.py; SentimentClassifier.adapt runs both.

    round 1   the model guesses every market message    keep p >= T or p <= 1 - T
              refit the part on the tagged training messages + those guesses
    round 2   guess again with the refitted part         keep the sure ones again, refit ...

The rounds stop once the sure guesses grow by less than MIN_GROWTH (the part would be fitted
again on nearly the same messages), or after `rounds`.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .config import ModelConfig, TrainConfig
from .errors import StocksentError
from .metrics import sigmoid
from .ngrams import NgramModel, fit_ngrams, flat_ids

MIN_GROWTH = 0.05
MAX_ROUNDS = 20


def check_settings(threshold: float, rounds: int) -> None:
    if not 0.5 <= threshold < 1.0:
        raise StocksentError("the threshold must be in [0.5, 1): guesses with p >= it or <= 1 - it are kept")
    if not 0 <= rounds <= MAX_ROUNDS:
        raise StocksentError(f"rounds must be between 0 (the n-gram part left as it is) and {MAX_ROUNDS}")


def self_train(network: np.ndarray, market: list[np.ndarray], tagged: list[np.ndarray], labels: np.ndarray,
               part: NgramModel, model: ModelConfig, train: TrainConfig, threshold: float = 0.9,
               rounds: int = 5, log: Callable[[str], None] = print) -> tuple[NgramModel, list[dict[str, Any]]]:
    """The part refitted on `tagged` (word ids) and their 0 / 1 `labels` plus the surest guesses
    for the `market` messages, whose networks' logits are `network`; and a row per round fitted."""
    check_settings(threshold, rounds)
    if not rounds:
        raise StocksentError("self-training needs at least one round")
    ids, done = flat_ids(market), []
    for number in range(1, rounds + 1):
        guess = sigmoid(part.blend(network, *ids))
        sure = np.flatnonzero((guess >= threshold) | (guess <= 1 - threshold))
        if not len(sure) and not done:
            raise StocksentError(f"none of the {len(market)} messages is guessed with p >= {threshold} or "
                                 f"<= {1 - threshold:.2g}; lower the threshold")
        if done and len(sure) < (1 + MIN_GROWTH) * done[-1]["kept"]:
            log(f"round {number}: {len(sure)} sure guesses, against {done[-1]['kept']} before: stopped")
            break
        guessed = (guess[sure] >= 0.5).astype(np.int64)
        part = fit_ngrams(tagged + [market[i] for i in sure], np.concatenate([labels, guessed]), model, train)
        done.append({"round": number, "kept": int(len(sure)), "positive_share": round(float(guessed.mean()), 4)})
        log(f"round {number}: refitted on {len(tagged)} tagged messages and {len(sure)} sure guesses "
            f"({guessed.mean():.1%} positive)")
    return part, done
