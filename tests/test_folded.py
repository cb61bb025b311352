import dataclasses

import numpy as np
import pytest
import torch

from stocksent.batches import score_by_length
from stocksent.classifier import SentimentClassifier
from stocksent.folded import FoldedEnsemble, FoldedLSTM
from stocksent.model import SentimentLSTM, build_model


def network_logits(model: SentimentLSTM, encoded: list[np.ndarray]) -> np.ndarray:
    with torch.inference_mode():
        return score_by_length(lambda tokens, lengths: model(tokens, lengths).numpy(), encoded)


def test_loaded_model_scores_through_the_fold_with_the_networks_logits(trained_model, real_rows):
    clf = SentimentClassifier.load(trained_model)
    assert isinstance(clf._scorer, FoldedEnsemble if clf.config.model.members > 1 else FoldedLSTM)
    encoded = clf.encode(row["message"] for row in real_rows[5000:8000])
    assert len({len(e) for e in encoded}) > 20  # batches of many lengths, so rows end mid-batch
    expected = network_logits(clf.model, encoded)
    np.testing.assert_allclose(clf._logits(encoded), expected, atol=1e-5)
    assert np.std(expected) > 0.1  # a trained model, not one that scores everything alike


@pytest.mark.parametrize("pooling", ["last", "max", "mean"])
@pytest.mark.parametrize("initial_state", ["zero", "learned"])
def test_fold_matches_every_pooling_and_starting_state(trained_model, real_rows, pooling, initial_state):
    clf = SentimentClassifier.load(trained_model)
    config = dataclasses.replace(clf.config.model, pooling=pooling, initial_state=initial_state, members=1)
    torch.manual_seed(1)
    model = SentimentLSTM(config).eval()  # two layers, as the trained model; random weights
    if model.initial_states is not None:
        with torch.no_grad():
            for state in model.initial_states:
                state.normal_()
    encoded = clf.encode(row["message"] for row in real_rows[:2000])
    folded = score_by_length(FoldedLSTM.fold(model), encoded)
    np.testing.assert_allclose(folded, network_logits(model, encoded), atol=1e-5)


def test_networks_the_fold_does_not_cover_keep_their_own_forward(trained_model):
    config = SentimentClassifier.load(trained_model).config.model
    for change in ({"bidirectional": True}, {"bigram_buckets": 64}):
        for members in (1, 2):
            assert FoldedLSTM.fold(build_model(dataclasses.replace(config, members=members, **change))) is None


def test_the_fold_scores_large_batches_and_the_network_small_ones(trained_model, real_rows):
    clf = SentimentClassifier.load(trained_model)
    calls = []
    fold = clf._scorer
    clf._scorer = lambda tokens, lengths: calls.append(len(tokens)) or fold(tokens, lengths)
    texts = [row["message"] for row in real_rows[:100]]
    few = clf.predict_proba(texts[:10])
    assert calls == []
    many = clf.predict_proba(texts)
    assert sum(calls) == 100
    np.testing.assert_allclose(many[:10], few, atol=1e-6)


def test_fold_of_an_ensemble_is_the_mean_of_its_members(trained_model, real_rows):
    config = dataclasses.replace(SentimentClassifier.load(trained_model).config.model, members=3)
    torch.manual_seed(2)
    model = build_model(config).eval()
    encoded = SentimentClassifier.load(trained_model).encode(row["message"] for row in real_rows[:1000])
    np.testing.assert_allclose(score_by_length(FoldedLSTM.fold(model), encoded), network_logits(model, encoded),
                               atol=1e-5)
