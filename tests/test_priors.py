"""Ticker priors as a part after the network: the shift each message gets, and their storage.
(How they are estimated: test_adapt.)"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from stocksent.config import Config
from stocksent.errors import StocksentError
from stocksent.scoring.parts import split_parts
from stocksent.scoring.priors import PREFIX, TickerPriors


def test_each_message_is_shifted_by_its_first_cashtag_s_prior_or_the_market_s():
    priors = TickerPriors(["BEAR", "BULL"], np.array([-1.0, 2.0]), 0.25)
    got = priors.shift(["$bull again", "$bear then $bull", "no ticker", "$NEVERSEEN"])
    np.testing.assert_array_equal(got, np.array([2.0, -1.0, 0.25, 0.25], dtype=np.float32))
    logits = np.zeros(4, np.float32)
    np.testing.assert_array_equal(priors.adjust(logits, np.zeros(0), np.zeros(4), ["$BULL"] * 4), [2.0] * 4)


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


@pytest.mark.parametrize("tickers", [["NIO", "AAPL", "TSLA"], ["AAPL", "AAPL", "TSLA"], ["AAPL", "TSLA", "TSLA"]],
                         ids=["unsorted", "first-repeated", "last-repeated"])
def test_saved_priors_with_tickers_unsorted_or_repeated_are_refused_for_that_reason(tickers):
    saved = TickerPriors(tickers, np.array([0.5, -1.0, 2.0]), 0.25).tensors()
    with pytest.raises(StocksentError, match=r"^m: its ticker priors are damaged \(not one shift per ticker\)$"):
        TickerPriors.from_tensors(saved, "m")
    fine = TickerPriors(sorted(set(tickers)), np.zeros(len(set(tickers))), 0.25).tensors()
    assert TickerPriors.from_tensors(fine, "m").tickers == sorted(set(tickers))
