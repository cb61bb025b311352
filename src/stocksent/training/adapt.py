"""Adaptation to a new market, first step: the n-gram part learns the market's words from the
model's own guesses for its messages, their tags unread (self-training); the networks stay as
they are. The second step, ticker priors, is priors.py; `adapt` runs both.

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

from ..config import ModelConfig, TrainConfig
from ..errors import StocksentError
from ..scoring.metrics import sigmoid
from ..scoring.ngrams import NgramModel, fit_ngrams, flat_ids
from ..scoring.predictor import Predictor
from ..scoring.priors import TickerPriors, estimate

MIN_GROWTH = 0.05
MAX_ROUNDS = 20


def check_settings(threshold: float, rounds: int) -> None:
    if not 0.5 <= threshold < 1.0:
        raise StocksentError("the threshold must be in [0.5, 1): guesses with p >= it or <= 1 - it are kept")
    if not 0 <= rounds <= MAX_ROUNDS:
        raise StocksentError(f"rounds must be between 0 (the n-gram part left as it is) and {MAX_ROUNDS}")


def adapt(predictor: Predictor, texts: list[str], tagged: list[str], codes: np.ndarray, threshold: float = 0.9,
          rounds: int = 5, priors: bool = True, log: Callable[[str], None] = print) -> tuple[Predictor, dict[str, Any]]:
    """The predictor adapted to a new market's `texts`, and a record of what was done. Its n-gram
    part is fitted again on the `tagged` messages it was trained on (their 0 / 1 `codes`) plus
    its own surest guesses for the market's, in up to `rounds` rounds; then, with `priors`, how
    bullish the market is on each ticker is estimated from its guesses (priors.py)."""
    check_settings(threshold, rounds)
    part = predictor.part(NgramModel)
    if part is None and rounds:
        raise StocksentError("this model has no n-gram part to adapt (it was trained with ngrams 0); "
                             "adapt its ticker priors alone with rounds 0 (--rounds 0)")
    if not texts:
        raise StocksentError("no market messages to adapt to")
    train, market = predictor.encode(tagged), predictor.encode(texts)
    ids, done = flat_ids(market), []
    network = predictor.network_logits(*ids)  # once: the networks stay as they are
    if rounds:
        part, done = self_train(network, market, train, codes, part, predictor.config.model, predictor.config.train,
                                threshold, rounds, log)
    record: dict[str, Any] = {"messages": len(texts), "tagged": len(train), "threshold": threshold, "rounds": done}
    adapted = predictor.without(TickerPriors)
    if rounds:
        adapted = adapted.with_part(part)
    if priors:  # from the scores without any priors: an adapted model's own would count twice
        scores = part.blend(network, *ids) if part is not None else network
        found, record["priors"] = ticker_priors(scores, texts, codes, log)
        adapted = adapted.with_part(found)
    return adapted, record


def ticker_priors(scores: np.ndarray, texts: list[str], codes: np.ndarray,
                  log: Callable[[str], None]) -> tuple[TickerPriors, dict[str, Any]]:
    """Priors from the market's logits, against the tagged messages' share of positives (the
    networks learnt at that share; the part's guesses move the share it was fitted at by a
    point or two, which is left aside)."""
    found, record = estimate(sigmoid(scores), texts, float(codes.mean()))
    log(f"ticker priors: {record['tickers']} tickers; the market's positive share "
        f"{record['market_prior']:.1%}, against {record['trained_prior']:.1%} in training")
    return found, record


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
