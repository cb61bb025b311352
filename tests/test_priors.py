"""Ticker priors: the EM estimate of a market's prior, the pull towards the
market's for tickers of few messages, and their storage."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from stocksent.config import Config
from stocksent.errors import StocksentError
from stocksent.scoring.metrics import sigmoid
from stocksent.scoring.parts import split_parts
from stocksent.scoring.priors import PREFIX, TickerPriors, _logit, estimate


def _posteriors(rng: np.random.Generator, n: int, share: float, trained: float) -> np.ndarray:
    """A classifier's calibrated posteriors at training prior `trained`, for n messages of which
    a `share` are positive: each message's evidence is a Gaussian log-likelihood ratio."""
    labels = rng.random(n) < share
    evidence = np.where(labels, 1.5, -1.5) + rng.normal(0, 1.7, n)
    llr = 2 * 1.5 * evidence / 1.7 ** 2  # the log-likelihood ratio of that evidence
    return sigmoid(llr + _logit(trained))


def test_em_finds_the_market_s_prior_from_posteriors_made_at_another():
    rng = np.random.default_rng(0)
    proba = _posteriors(rng, 40_000, share=0.8, trained=0.5)
    assert abs(proba.mean() - 0.8) > 0.05  # the posteriors' mean alone is off
    priors, record = estimate(proba, ["no ticker"] * len(proba), trained_prior=0.5)
    assert abs(record["market_prior"] - 0.8) < 0.01
    assert priors.tickers == [] and abs(priors.default - (_logit(record["market_prior"]) - _logit(0.5))) < 1e-5


def test_each_ticker_gets_its_own_prior_and_a_ticker_of_few_messages_keeps_near_the_market_s():
    rng = np.random.default_rng(1)
    bull, bear, rare = (_posteriors(rng, n, share, 0.5) for n, share in ((6000, 0.9), (6000, 0.3), (2, 0.0)))
    texts = ["$BULL up"] * 6000 + ["$BEAR down"] * 6000 + ["$RARE meh"] * 2
    priors, record = estimate(np.concatenate([bull, bear, rare]), texts, trained_prior=0.5)
    shift = dict(zip(priors.tickers, priors.shifts))
    assert priors.tickers == ["BEAR", "BULL", "RARE"] and record["tickers"] == 3
    assert abs(shift["BULL"] - _logit(0.9)) < 0.15 and abs(shift["BEAR"] - _logit(0.3)) < 0.1
    assert abs(shift["RARE"] - priors.default) < 0.5 * abs(shift["BEAR"] - priors.default)  # pulled to the market's
    got = priors.shift(["$bull again", "$bear again", "no ticker", "$NEVERSEEN"])
    np.testing.assert_allclose(got, [shift["BULL"], shift["BEAR"], priors.default, priors.default], rtol=1e-6)


def test_priors_round_trip_through_tensors_and_damage_is_one_error():
    priors = TickerPriors(["AAPL", "NIO", "TSLA"], np.array([0.5, -1.0, 2.0]), 0.25)
    state = {"net.weight": torch.ones(2), **priors.tensors()}
    rest, (back,), _ = split_parts(state, Config(), "m")
    assert list(rest) == ["net.weight"] and isinstance(back, TickerPriors)
    assert back.tickers == priors.tickers and back.default == 0.25
    np.testing.assert_array_equal(back.shifts, priors.shifts)
    assert split_parts({"net.weight": torch.ones(2)}, Config(), "m")[1] == []
    broken = dict(state, **{f"{PREFIX}shifts": torch.ones(2)})
    with pytest.raises(StocksentError, match="m: its ticker priors are damaged"):
        split_parts(broken, Config(), "m")
    with pytest.raises(StocksentError, match="incomplete"):
        split_parts({k: v for k, v in state.items() if k != f"{PREFIX}default"}, Config(), "m")
    with pytest.raises(StocksentError, match="both labels"):
        estimate(np.array([0.5]), ["x"], trained_prior=1.0)


@pytest.mark.parametrize("tickers", [["NIO", "AAPL", "TSLA"], ["AAPL", "AAPL", "TSLA"], ["AAPL", "TSLA", "TSLA"]],
                         ids=["unsorted", "first-repeated", "last-repeated"])
def test_saved_priors_with_tickers_unsorted_or_repeated_are_refused_for_that_reason(tickers):
    saved = TickerPriors(tickers, np.array([0.5, -1.0, 2.0]), 0.25).tensors()
    with pytest.raises(StocksentError, match=r"^m: its ticker priors are damaged \(not one shift per ticker\)$"):
        TickerPriors.from_tensors(saved, "m")
    fine = TickerPriors(sorted(set(tickers)), np.zeros(len(set(tickers))), 0.25).tensors()
    assert TickerPriors.from_tensors(fine, "m").tickers == sorted(set(tickers))


def test_estimate_needs_messages_and_a_training_prior_strictly_between_0_and_1():
    for trained in (0.0, 1.0, -0.1, 1.5):
        with pytest.raises(StocksentError, match="^ticker priors need training data holding both labels$"):
            estimate(np.array([0.2, 0.9]), ["$A x", "$B y"], trained_prior=trained)
    with pytest.raises(StocksentError, match="^ticker priors need at least one market message$"):
        estimate(np.array([]), [], trained_prior=0.5)


def _standing_still(proba: np.ndarray, trained: float, prior: float, anchor: float, strength: float) -> float:
    """How far one more EM step moves `prior`: 0 at the estimate (Saerens et al.'s update, with
    `strength` messages at `anchor` added)."""
    proba = np.clip(proba, 1e-6, 1 - 1e-6)  # as estimate clips them
    up = prior / trained * proba
    posterior = up / (up + (1 - prior) / (1 - trained) * (1 - proba))
    return (posterior.sum() + strength * anchor) / (len(proba) + strength) - prior


def test_each_prior_is_where_the_em_stands_still_the_market_s_unpulled_and_each_ticker_s_pulled_to_it():
    from stocksent.scoring.priors import STRENGTH

    rng = np.random.default_rng(3)
    # Few messages, so that the pull of STRENGTH messages shows: 40 on one ticker, 8 on another, 12 on none.
    proba = np.concatenate([_posteriors(rng, n, share, 0.6) for n, share in ((40, 0.8), (8, 0.2), (12, 0.5))])
    texts = ["$UP x"] * 40 + ["$DOWN y"] * 8 + ["no ticker"] * 12
    priors, record = estimate(proba, texts, trained_prior=0.6)
    market = float(sigmoid(priors.default + _logit(0.6)))
    assert abs(market - record["market_prior"]) < 1e-4
    assert abs(_standing_still(proba, 0.6, market, market, 0.0)) < 1e-4
    for ticker, shift, where in zip(priors.tickers, priors.shifts, (slice(40, 48), slice(0, 40))):
        prior = float(sigmoid(shift + _logit(0.6)))
        assert abs(_standing_still(proba[where], 0.6, prior, market, STRENGTH)) < 1e-4, ticker
    assert priors.tickers == ["DOWN", "UP"] and priors.shifts[0] < priors.default < priors.shifts[1]
