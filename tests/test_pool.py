import functools

import numpy as np
import pytest

from stocksent.classifier import SentimentClassifier
from stocksent.errors import StocksentError
from stocksent.scoring.pool import map_chunks


def _probabilities(clf: SentimentClassifier, texts: list[str]) -> list[float]:
    return clf.positive_proba(texts).tolist()


def test_chunks_come_back_in_order_with_the_scores_of_one_process(trained_model, real_rows):
    texts = [r["message"] for r in real_rows[:600]]
    chunks = [texts[i:i + 50] for i in range(0, len(texts), 50)]
    load = functools.partial(SentimentClassifier.load, trained_model)
    results = list(map_chunks(load, _probabilities, iter(chunks), workers=2))
    assert [len(r) for r in results] == [len(c) for c in chunks]
    alone = SentimentClassifier.load(trained_model).positive_proba(texts)
    np.testing.assert_allclose(np.concatenate(results), alone, atol=1e-6)


def test_a_model_a_worker_cannot_load_is_an_error_not_a_hang(tmp_path):
    load = functools.partial(SentimentClassifier.load, tmp_path / "missing")
    with pytest.raises(StocksentError, match="model directory not found"):
        list(map_chunks(load, _probabilities, iter([["$SPY up"]]), workers=2))
