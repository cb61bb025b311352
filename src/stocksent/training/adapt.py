"""Adaptation to a new market, its tags unread: the market's and each ticker's share of bullish
messages, estimated as the market index estimates them (scoring/index.py), and the n-gram part
taught the market's words from the model's own guesses (self-training); the networks stay as
they are.

    0. without the market's tags: a market whose probabilities are no mix of the calibration
       set's bearish and bullish ones (quantify.misfit above MAX_MISFIT) is refused
    1. the market's share: EMQ over every market message, moved from the training share only as
       far as its interval allows (a share the evidence cannot tell from the training one stays)
    2. rounds of self-training: the model guesses every market message; of the sure guesses
       (p >= T or p <= 1 - T) as many are kept as clear it, but as the most bullish and the most
       bearish in the market's estimated share; the part is refitted on the tagged training
       messages and those; the rounds stop once the sure guesses grow by less than MIN_GROWTH
    3. ticker priors (priors.py): each ticker's share, moved from the market's only as far as
       its own interval allows, shifts its messages' logits
    4. the check: the adapted model's ROC-AUC on held-out tagged messages (its own test split),
       and its accuracy and ROC-AUC on the market's own tags when given, against the original's;
       any that falls by more than MAX_FALL refuses the adaptation
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..config import ModelConfig, TrainConfig
from ..errors import StocksentError
from ..scoring.calibration import CalibrationSet
from ..scoring.index import NO_TICKER, CellSums, Estimator, tagged_calibration, tickers_of
from ..scoring.metrics import binary_metrics, sigmoid
from ..scoring.ngrams import NgramModel, fit_ngrams, flat_ids
from ..scoring.predictor import Predictor
from ..scoring.priors import TickerPriors
from ..scoring.quantify import DEFAULT_METHOD, Calibration, default_method, misfit

MIN_GROWTH = 0.05
MAX_ROUNDS = 20
MAX_FALL = 0.005  # what a check may fall by before the adaptation is refused
# The most a market's probabilities may differ from a mix of the calibration set's (quantify.misfit)
# for its shares to be read from its texts alone. Set between the development markets where adapting
# helped and those where it made the model worse (bench/adapt_markets.py, docs/index.md).
MAX_MISFIT = 0.2
LEVEL = 0.9  # the intervals a share moves within
EDGE = 1e-4  # shares are kept this far from 0 and 1, where a logit shift has no end
PERIOD = np.zeros(1, dtype="datetime64[s]")


def check_settings(threshold: float, rounds: int) -> None:
    if not 0.5 <= threshold < 1.0:
        raise StocksentError("the threshold must be in [0.5, 1): guesses with p >= it or <= 1 - it are kept")
    if not 0 <= rounds <= MAX_ROUNDS:
        raise StocksentError(f"rounds must be between 0 (the n-gram part left as it is) and {MAX_ROUNDS}")


@dataclass(frozen=True)
class Check:
    """Tagged messages an adapted model must score no worse on than the original: their texts,
    0 / 1 codes, what they are called, and the metrics compared on them."""

    name: str
    texts: list[str]
    codes: np.ndarray
    metrics: tuple[str, ...] = ("roc_auc",)


def adapt(predictor: Predictor, texts: list[str], tagged: list[str], codes: np.ndarray, threshold: float = 0.9,
          rounds: int = 5, priors: bool = True, log: Callable[[str], None] = print,
          market_tags: tuple[list[str], np.ndarray] | None = None, checks: Sequence[Check] = (),
          validation: tuple[list[str], np.ndarray] | None = None) -> tuple[Predictor, dict[str, Any]]:
    """The predictor adapted to a new market's `texts`, and a record of what was done (see the
    module's steps). `tagged` and `codes`: the messages it was trained on and their 0 / 1
    labels, which the part is refitted on beside its guesses. `market_tags` (texts, codes): the
    market's own tagged messages, if the user has some; they calibrate the estimates and are
    checked on. `checks`: more tagged messages checked on (such as its own test split). An
    adaptation that scores worse on any is refused with one error naming what fell.
    `validation` (texts, codes): the model's validation split, which the calibration set the
    index reads is made of again once the part is refitted; without it the set is dropped."""
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
    calibration = _calibration(predictor, tagged, codes, market_tags)
    scores = part.blend(network, *ids) if part is not None else network
    proba = sigmoid(scores)
    if rounds:
        _check_sure(proba, threshold)
    fit = _check_fit(proba, calibration) if market_tags is None else None
    method = default_method(market_tags is not None)
    share, record = market_share(proba, calibration, method)
    log(f"the market's bullish share: {share:.1%} (estimated {record['estimated']:.1%}, interval "
        f"{record['low']:.1%} to {record['high']:.1%}), against {calibration.trained_prior:.1%} in training"
        + (f"; misfit {fit:.3f} (at most {MAX_MISFIT})" if fit is not None else ""))
    record = {"messages": len(texts), "tagged": len(train), "threshold": threshold, "market_share": record,
              **({"misfit": fit} if fit is not None else {})}
    if rounds:
        part, done = self_train(network, market, train, codes, part, predictor.config.model, predictor.config.train,
                                threshold, rounds, share, log)
    record["rounds"] = done
    adapted = predictor.without(TickerPriors)
    if rounds:
        adapted = _recalibrated(adapted.with_part(part), validation, float(codes.mean()))
    if priors:  # from the scores without any priors: an adapted model's own would count twice
        if rounds:
            proba = sigmoid(part.blend(network, *ids))
        found, record["priors"] = ticker_priors(proba, texts, calibration, share, log, method)
        adapted = adapted.with_part(found)
    every = [*checks, *([Check("the market's tags", *market_tags, ("accuracy", "roc_auc"))] if market_tags else [])]
    record["checks"] = check_not_worse(predictor, adapted, every)
    return adapted, record


def self_train(network: np.ndarray, market: list[np.ndarray], tagged: list[np.ndarray], labels: np.ndarray,
               part: NgramModel, model: ModelConfig, train: TrainConfig, threshold: float = 0.9,
               rounds: int = 5, share: float = 0.5,
               log: Callable[[str], None] = print) -> tuple[NgramModel, list[dict[str, Any]]]:
    """The part refitted on `tagged` (word ids) and their 0 / 1 `labels` plus the surest guesses
    for the `market` messages, whose networks' logits are `network`; and a row per round fitted.
    As many guesses are kept as are sure (p >= threshold or <= 1 - threshold), the most bullish
    and the most bearish in the market's estimated `share`."""
    check_settings(threshold, rounds)
    if not rounds:
        raise StocksentError("self-training needs at least one round")
    ids, done = flat_ids(market), []
    for number in range(1, rounds + 1):
        guess = sigmoid(part.blend(network, *ids))
        sure = np.flatnonzero((guess >= threshold) | (guess <= 1 - threshold))
        if not done:
            _check_sure(guess, threshold)
        if done and len(sure) < (1 + MIN_GROWTH) * done[-1]["kept"]:
            log(f"round {number}: {len(sure)} sure guesses, against {done[-1]['kept']} before: stopped")
            break
        sure, guessed = _in_share(guess, len(sure), share)
        part = fit_ngrams(tagged + [market[i] for i in sure], np.concatenate([labels, guessed]), model, train)
        done.append({"round": number, "kept": int(len(sure)), "positive_share": round(float(guessed.mean()), 4)})
        log(f"round {number}: refitted on {len(tagged)} tagged messages and {len(sure)} sure guesses "
            f"({guessed.mean():.1%} positive)")
    return part, done


def _check_sure(guess: np.ndarray, threshold: float) -> None:
    if not np.any((guess >= threshold) | (guess <= 1 - threshold)):
        raise StocksentError(f"none of the {len(guess)} messages is guessed with p >= {threshold} or "
                             f"<= {1 - threshold:.2g}; lower the threshold")


def _recalibrated(adapted: Predictor, validation: tuple[list[str], np.ndarray] | None,
                  trained_prior: float) -> Predictor:
    """`adapted` with the calibration set of `validation` as it now scores it, or with none: the
    one it carries scored the validation split with the n-gram part it no longer has."""
    if validation is None:
        return adapted.without(CalibrationSet)
    proba = sigmoid(adapted.without(TickerPriors).logits(validation[0]))
    return adapted.with_part(CalibrationSet(proba, validation[1], trained_prior))


def _check_fit(proba: np.ndarray, calibration: Calibration) -> float:
    """Refuse a market whose messages do not read as a mix of bullish and bearish ones like those
    the model was calibrated on: its shares, and the sure guesses self-training keeps, would then
    be read off messages of another kind (news, say), and only the market's tags can tell."""
    found = misfit(proba, np.ones(len(proba)), calibration)
    if found > MAX_MISFIT:
        raise StocksentError(f"the market's messages do not read as a mix of bullish and bearish ones like the "
                             f"model's (misfit {found:.3f} > {MAX_MISFIT}): adapting to their texts alone could "
                             f"make it worse; give some of the market's tagged messages (--calibrate FILE, "
                             f"market_tags in Python); nothing adapted")
    return round(found, 4)


def _in_share(guess: np.ndarray, count: int, share: float) -> tuple[np.ndarray, np.ndarray]:
    """The `count` messages kept, the most bullish and the most bearish guesses in `share`, and
    their guessed labels."""
    bullish = int(round(share * count))
    order = np.argsort(guess, kind="stable")
    kept = np.concatenate([order[len(order) - bullish:], order[:count - bullish]])
    return kept, np.concatenate([np.ones(bullish, np.int64), np.zeros(count - bullish, np.int64)])


def _calibration(predictor: Predictor, tagged: list[str], codes: np.ndarray,
                 market_tags: tuple[list[str], np.ndarray] | None) -> Calibration:
    """What the estimates read: the market's own tags when given, else the model's calibration
    set, else (a model saved before those, or adapted without its validation split) its
    training messages, at their share."""
    if market_tags is not None:
        return tagged_calibration(predictor, *market_tags, float(codes.mean()))
    saved = predictor.part(CalibrationSet)
    return saved.calibration() if saved is not None else tagged_calibration(predictor, tagged, codes)


def _shares(proba: np.ndarray, groups: list[str], calibration: Calibration,
            method: str = DEFAULT_METHOD) -> dict[str, tuple[float, float, float]]:
    """Each group's estimated share and interval, as the index estimates a cell."""
    sums = CellSums()
    sums.add(groups, np.repeat(PERIOD, len(groups)), np.asarray(proba, dtype=np.float64))
    rows = Estimator(method, calibration, LEVEL).rows(sums)
    return {ticker: (share, low, high) for ticker, share, low, high in
            zip(rows["ticker"], rows["bullish_share"], rows["bullish_share_low"], rows["bullish_share_high"])}


def market_share(proba: np.ndarray, calibration: Calibration,
                 method: str = DEFAULT_METHOD) -> tuple[float, dict[str, float]]:
    """The market's bullish share: the training share where the interval holds it, else the end
    of the interval nearest it; and the estimate and interval it came from."""
    estimated, low, high = _shares(proba, ["market"] * len(proba), calibration, method)["market"]
    share = float(np.clip(calibration.trained_prior, low, high))
    return share, {"estimated": round(estimated, 4), "low": round(low, 4), "high": round(high, 4),
                   "share": round(share, 4)}


def ticker_priors(proba: np.ndarray, texts: list[str], calibration: Calibration, market: float,
                  log: Callable[[str], None] = print,
                  method: str = DEFAULT_METHOD) -> tuple[TickerPriors, dict[str, Any]]:
    """Each ticker's prior: the `market` share where its interval holds it, else the end of the
    interval nearest it; as logit shifts against the training share."""
    trained = _logit(calibration.trained_prior)
    shares = _shares(proba, tickers_of(texts), calibration, method)
    shares.pop(NO_TICKER, None)
    tickers = sorted(shares)
    moved = {t: float(np.clip(market, shares[t][1], shares[t][2])) for t in tickers}
    found = TickerPriors(tickers, np.array([_logit(moved[t]) - trained for t in tickers]), _logit(market) - trained)
    apart = sum(abs(moved[t] - market) > 1e-9 for t in tickers)
    log(f"ticker priors: {len(tickers)} tickers, {apart} of them apart from the market's share {market:.1%}")
    return found, {"market_prior": round(market, 4), "trained_prior": round(calibration.trained_prior, 4),
                   "tickers": len(tickers), "apart": apart}


def check_not_worse(before: Predictor, after: Predictor, checks: Sequence[Check]) -> list[dict[str, Any]]:
    """Each check's metrics before and after; an error naming every one that fell by more than
    MAX_FALL."""
    rows, fell = [], []
    for check in checks:
        old, new = (binary_metrics(check.codes, sigmoid(p.logits(check.texts)), p.labels) for p in (before, after))
        for metric in check.metrics:
            rows.append({"on": check.name, "metric": metric, "before": round(old[metric], 4),
                         "after": round(new[metric], 4)})
            if new[metric] < old[metric] - MAX_FALL:
                fell.append(f"{metric} on {check.name} {old[metric]:.4f} -> {new[metric]:.4f} "
                            f"({new[metric] - old[metric]:+.4f})")
    if fell:
        raise StocksentError(f"adapting would make the model worse: {'; '.join(fell)}; nothing adapted")
    return rows


def _logit(p: float) -> float:
    p = float(np.clip(p, EDGE, 1 - EDGE))
    return float(np.log(p / (1 - p)))
