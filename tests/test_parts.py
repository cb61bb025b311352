import numpy as np
import pytest
import torch

from stocksent.config import Config
from stocksent.errors import StocksentError
from stocksent.scoring.calibration import CalibrationSet
from stocksent.scoring.ngrams import NgramModel
from stocksent.scoring.parts import KINDS, adjust, find_part, network_state, part_tensors, split_parts, with_part
from stocksent.scoring.priors import TickerPriors

# Three messages of word ids: [5 6], [7], [5 6 7].
FLAT, LENGTHS = np.array([5, 6, 7, 5, 6, 7]), np.array([2, 1, 3])
TEXTS = ["$AAPL up", "$TSLA", "nothing"]


def _ngrams() -> NgramModel:
    keys = np.array([(1 << 20) | 5, (1 << 20) | 7], dtype=np.int64)  # the unigrams 5 and 7
    return NgramModel(keys, np.array([0.5, -1.0], dtype=np.float32), 0.25, 1, 0.5)


def _priors() -> TickerPriors:
    return TickerPriors(["AAPL", "TSLA"], np.array([1.0, -2.0]), 0.1)


def test_parts_adjust_in_order_the_ngram_blend_then_the_ticker_shift():
    network = np.array([0.2, -0.4, 1.0], dtype=np.float32)
    ngrams, priors = _ngrams(), _priors()
    expected = ngrams.blend(network, FLAT, LENGTHS) + priors.shift(TEXTS)
    np.testing.assert_array_equal(adjust([ngrams, priors], network, FLAT, LENGTHS, TEXTS), expected)
    np.testing.assert_array_equal(adjust([], network, FLAT, LENGTHS, TEXTS), network)
    assert [kind.__name__ for kind in KINDS] == ["NgramModel", "TickerPriors", "CalibrationSet"]
    calibration = CalibrationSet(np.array([0.2, 0.9]), np.array([0, 1]), 0.55)
    np.testing.assert_array_equal(adjust([ngrams, priors, calibration], network, FLAT, LENGTHS, TEXTS), expected)


def test_a_saved_state_splits_into_the_network_and_each_part_and_back():
    config = Config().override("model", ngrams=1)
    state = {"head.weight": torch.ones(2), **part_tensors([_ngrams(), _priors()])}
    network, parts, same = split_parts(state, config, "m")
    assert list(network) == ["head.weight"] == list(network_state(state)) and same == config
    assert [type(p) for p in parts] == [NgramModel, TickerPriors]
    assert sorted(part_tensors(parts)) == sorted(k for k in state if k != "head.weight")
    mid_run, parts, amended = split_parts({"head.weight": torch.ones(2)}, config, "m")  # saved before the part
    assert parts == [] and amended.model.ngrams == 0
    with pytest.raises(StocksentError, match="m: its weights hold an n-gram part that its config does not name"):
        split_parts(state, Config(), "m")


def test_with_part_replaces_its_kind_and_keeps_the_order():
    ngrams, priors, other = _ngrams(), _priors(), _priors()
    assert with_part([priors], ngrams) == [ngrams, priors]
    replaced = with_part([ngrams, priors], other)
    assert replaced[0] is ngrams and replaced[1] is other
    assert find_part(replaced, TickerPriors) is other and find_part([ngrams], TickerPriors) is None
