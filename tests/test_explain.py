import numpy as np
import pytest

from stocksent.scoring.explain import explain
from stocksent.scoring.metrics import sigmoid
from stocksent.scoring.predictor import Predictor


def test_each_effect_is_the_probability_with_the_token_less_without_it(trained_model):
    predictor = Predictor.load(trained_model)
    text = "$SPY puts printing today"
    why = explain(predictor, text, top=10, in_order=True)
    tokens = [t for t, _ in why]
    assert tokens == ["<TICKER>", "puts", "printing", "today"]  # in the message's order
    full = sigmoid(predictor.logits([text]))[0]
    for i, (_, effect) in enumerate(why):
        ids = np.asarray(predictor.vocab.encode(tokens[:i] + tokens[i + 1:]), dtype=np.int64)
        without = sigmoid(predictor.score_ids(ids, np.array([len(ids)]), [text]))[0]
        assert effect == pytest.approx(full - without, abs=1e-6)


def test_top_keeps_the_largest_effects_and_nothing_left_is_nothing_to_explain(trained_model):
    predictor = Predictor.load(trained_model)
    every = explain(predictor, "bought more calls before the close", top=10)
    assert explain(predictor, "bought more calls before the close", top=2) == every[:2]
    assert [abs(e) for _, e in every] == sorted((abs(e) for _, e in every), reverse=True)
    assert explain(predictor, "!!! ...") == []
    with pytest.raises(TypeError, match="explain takes one string"):
        explain(predictor, ["$SPY"])
