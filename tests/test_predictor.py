import numpy as np
import pytest

from stocksent import SentimentClassifier
from stocksent.errors import StocksentError
from stocksent.scoring.metrics import sigmoid
from stocksent.scoring.ngrams import NgramModel
from stocksent.scoring.predictor import Predictor
from stocksent.scoring.priors import TickerPriors


def test_a_loaded_predictor_scores_as_the_classifier_does(trained_model, real_rows):
    predictor = Predictor.load(trained_model)
    texts = [r["message"] for r in real_rows[:300]]
    logits = predictor.logits(texts)
    assert logits.dtype == np.float32 and logits.shape == (300,)
    np.testing.assert_array_equal(sigmoid(logits), SentimentClassifier.load(trained_model).positive_proba(texts))
    np.testing.assert_array_equal(predictor.score_ids(*predictor.encode_flat(texts), texts), logits)
    part = predictor.part(NgramModel)
    flat, lengths = predictor.encode_flat(texts)
    np.testing.assert_array_equal(part.blend(predictor.network_logits(flat, lengths), flat, lengths), logits)
    assert predictor.logits([]).shape == (0,)
    assert len(predictor.version) == 12 and predictor.labels == ("bearish", "bullish")


def test_save_then_load_gives_the_same_tensors_and_scores(trained_model, real_rows, tmp_path):
    predictor = Predictor.load(trained_model)
    predictor.save(tmp_path / "again", {})
    again = Predictor.load(tmp_path / "again")
    assert again.version == predictor.version  # the same bytes: the same sha256
    texts = [r["message"] for r in real_rows[300:400]]
    np.testing.assert_array_equal(again.logits(texts), predictor.logits(texts))


def test_a_new_part_makes_a_new_unsaved_predictor_and_leaves_the_old_one(trained_model, real_rows):
    predictor = Predictor.load(trained_model)
    texts = [r["message"] for r in real_rows[:100]]
    before = predictor.logits(texts)
    shifted = predictor.with_part(TickerPriors([], np.zeros(0), 1.5))
    np.testing.assert_allclose(shifted.logits(texts), before + np.float32(1.5))
    np.testing.assert_array_equal(predictor.logits(texts), before)
    assert shifted.version is None and predictor.version is not None
    with pytest.raises(StocksentError, match="needs a model loaded from a directory"):
        shifted.loader()
    alone = predictor.without(NgramModel)
    np.testing.assert_array_equal(alone.logits(texts), predictor.network_logits(*predictor.encode_flat(texts)))


def test_the_loader_loads_the_same_predictor_again(trained_model, real_rows):
    texts = [r["message"] for r in real_rows[:50]]
    load = Predictor.load(trained_model).loader()
    np.testing.assert_array_equal(load().logits(texts), Predictor.load(trained_model).logits(texts))


def test_an_unknown_backend_is_one_error(trained_model):
    with pytest.raises(StocksentError, match="unknown backend 'tf'; choose torch or onnx"):
        Predictor.load(trained_model, backend="tf")
