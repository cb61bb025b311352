import dataclasses

import numpy as np
import pytest
import torch

from stocksent.classifier import SentimentClassifier
from stocksent.data.batches import score_by_length
from stocksent.data.store import load_model
from stocksent.nets.folded import FoldedLSTM
from stocksent.nets.model import SentimentLSTM, build_model, load_weights
from stocksent.scoring.ngrams import NgramModel
from stocksent.scoring.parts import network_state
from stocksent.scoring.scorer import FoldedScorer, NetworkScorer, make_scorer


def network_logits(model: SentimentLSTM, encoded: list[np.ndarray]) -> np.ndarray:
    with torch.inference_mode():
        return score_by_length(lambda tokens, lengths: model(tokens, lengths).numpy(), encoded)


def test_loaded_model_scores_through_the_fold_with_the_networks_logits(trained_model, real_rows):
    clf = SentimentClassifier.load(trained_model)
    config, _, state = load_model(trained_model)
    saved = load_weights(build_model(config.model), network_state(state), "saved").eval()  # two networks
    scorer = make_scorer(saved, "cpu")
    assert isinstance(scorer, FoldedScorer)  # a CPU scores through the fold
    texts = [row["message"] for row in real_rows[5000:8000]]
    encoded = clf.encode(texts)
    assert len({len(e) for e in encoded}) > 20  # batches of many lengths, so rows end mid-batch
    expected = network_logits(saved, encoded)
    lengths = np.fromiter(map(len, encoded), dtype=np.int64)
    flat = np.concatenate(encoded)
    np.testing.assert_allclose(scorer.logits(flat, lengths), expected, atol=1e-5)  # flat ids
    blended = clf.predictor_.part(NgramModel).blend(expected, flat, lengths)  # the loaded model adds its n-gram part
    np.testing.assert_allclose(clf.decision_function(texts), blended, atol=1e-5)
    np.testing.assert_allclose(clf.decision_function(texts[:10]), blended[:10], atol=1e-5)  # the network's path
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


@pytest.mark.parametrize("pooling", ["last", "max", "mean"])
@pytest.mark.parametrize("threads", [1, 2])
def test_a_message_s_logit_is_the_same_bit_for_bit_whatever_else_its_batch_holds(trained_model, real_rows, pooling,
                                                                                 threads):
    clf = SentimentClassifier.load(trained_model)
    torch.manual_seed(2)
    folded = FoldedLSTM.fold(SentimentLSTM(dataclasses.replace(clf.config.model, pooling=pooling, members=1)).eval())
    flat, lengths = clf.predictor_.encode_flat(row["message"] for row in real_rows[:1500])
    starts = np.cumsum(lengths) - lengths
    ids, before = torch.from_numpy(flat), torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        whole = folded.score(ids, torch.from_numpy(starts), torch.from_numpy(lengths))
        for size in (700, 97, 5, 1):  # rows end at other steps in each; the last batches are small
            parts = [folded.score(ids, torch.from_numpy(starts[i:i + size]), torch.from_numpy(lengths[i:i + size]))
                     for i in range(0, len(lengths), size)]
            np.testing.assert_array_equal(np.concatenate(parts), whole)
    finally:
        torch.set_num_threads(before)


def test_a_loaded_model_scores_a_message_alike_in_any_chunk(trained_model, real_rows):
    clf = SentimentClassifier.load(trained_model)  # two networks, the fold, and the n-gram part after them
    texts = [row["message"] for row in real_rows[:3000]]
    whole = clf.decision_function(texts)
    for size in (2500, 333, 16, 3, 1):
        parts = [clf.decision_function(texts[i:i + size]) for i in range(0, len(texts) - size + 1, size)]
        np.testing.assert_array_equal(np.concatenate(parts), whole[:len(parts) * size])


def test_networks_the_fold_does_not_cover_keep_their_own_forward(trained_model):
    config = SentimentClassifier.load(trained_model).config.model
    for change in ({"bidirectional": True}, {"bigram_buckets": 64}):
        assert FoldedLSTM.fold(SentimentLSTM(dataclasses.replace(config, members=1, **change))) is None
        assert build_model(dataclasses.replace(config, **change)).merged() is None


def test_the_fold_scores_sets_of_every_size_and_the_network_none(trained_model, real_rows, monkeypatch):
    clf = SentimentClassifier.load(trained_model)
    folded, network = [], []
    fold_score, network_logits_of = FoldedLSTM.score, NetworkScorer.logits
    monkeypatch.setattr(FoldedLSTM, "score", lambda self, ids, starts, lengths: folded.append(len(lengths))
                        or fold_score(self, ids, starts, lengths))
    monkeypatch.setattr(NetworkScorer, "logits", lambda self, flat, lengths: network.append(len(lengths))
                        or network_logits_of(self, flat, lengths))
    texts = [row["message"] for row in real_rows[:100]]
    one = clf.positive_proba(texts[:1])
    many = clf.positive_proba(texts)
    assert (sum(folded), network) == (101, [])
    assert many[0] == one[0]


@pytest.mark.parametrize("pooling,initial_state", [("max", "zero"), ("last", "learned"), ("mean", "learned")])
def test_an_ensemble_folds_and_merges_to_the_mean_of_its_members(trained_model, real_rows, pooling, initial_state):
    clf = SentimentClassifier.load(trained_model)
    assert len(clf.config.model.lstm_sizes) == 2  # a deeper layer's weights are merged too
    config = dataclasses.replace(clf.config.model, members=3, pooling=pooling, initial_state=initial_state)
    torch.manual_seed(2)
    ensemble = build_model(config).eval()
    for member in ensemble.members():
        for state in member.initial_states or []:
            torch.nn.init.normal_(state)
    wide = ensemble.merged()
    assert wide.lstms[1].hidden_size == 3 * config.lstm_sizes[1]
    encoded = clf.encode(row["message"] for row in real_rows[:1000])
    expected = network_logits(ensemble, encoded)
    np.testing.assert_allclose(network_logits(wide, encoded), expected, atol=1e-5)
    np.testing.assert_allclose(score_by_length(FoldedLSTM.fold(wide), encoded), expected, atol=1e-5)
    folded = FoldedLSTM.fold(ensemble)  # the members side by side, without the wide network's zero blocks
    assert folded.members == 3
    np.testing.assert_allclose(score_by_length(folded, encoded), expected, atol=1e-5)
