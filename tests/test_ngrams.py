"""The n-gram part: its keys, its fit against scikit-learn's, its scoring, and a model that carries it."""
from __future__ import annotations

import shutil

import numpy as np
import pytest
import torch

from stocksent.classifier import SentimentClassifier
from stocksent.config import ModelConfig, TrainConfig
from stocksent.data.batches import score_by_length
from stocksent.data.store import load_model, save_model, split_prefix
from stocksent.errors import StocksentError
from stocksent.nets.model import build_model, load_weights
from stocksent.scoring import parts
from stocksent.scoring.ngrams import ID_BITS, PREFIX, NgramModel, fit_ngrams, flat_ids, ngram_keys
from stocksent.text.preprocess import tokenize
from stocksent.text.vocab import Vocab


def _key(*ids: int) -> int:
    key = len(ids)
    for i in ids:
        key = (key << ID_BITS) | i
    return key


def test_keys_are_each_message_s_ngrams_once_and_never_across_messages():
    flat, lengths = np.array([5, 6, 5, 6, 7, 8]), np.array([4, 2])
    rows, keys = ngram_keys(flat, lengths, 3)
    got = [set(keys[rows == r].tolist()) for r in (0, 1)]
    assert got[0] == {_key(5), _key(6), _key(5, 6), _key(6, 5), _key(5, 6, 5), _key(6, 5, 6)}
    assert got[1] == {_key(7), _key(8), _key(7, 8)}  # no (6, 7): that pair spans two messages
    assert len(keys) == len(got[0]) + len(got[1])  # (5, 6) twice in message 0 is counted once


@pytest.fixture(scope="module")
def sliced(real_rows):
    """The real slice's first 2,500 messages as word ids, labels, and the fitted part."""
    rows = real_rows[:2500]
    tokens = [tokenize(r["message"]) for r in rows]
    vocab = Vocab.build(tokens, 1)
    encoded = [np.asarray(vocab.encode(t) or [0], dtype=np.int64) for t in tokens]
    labels = np.array([r["sentiment"] == "bullish" for r in rows], dtype=np.int64)
    model = ModelConfig(ngrams=3, vocab_size=len(vocab))
    return encoded, labels, fit_ngrams(encoded, labels, model, TrainConfig(ngram_min_count=1)), model


def test_fit_reaches_scikit_learn_s_optimum_on_the_same_features(sliced):
    sparse = pytest.importorskip("scipy.sparse")
    LogisticRegression = pytest.importorskip("sklearn.linear_model").LogisticRegression
    encoded, labels, part, _ = sliced
    rows, keys = ngram_keys(*flat_ids(encoded), 3)
    column = np.searchsorted(part.keys, keys)
    p = 1 + np.bincount(column[labels[rows] == 1], minlength=len(part.keys))
    q = 1 + np.bincount(column[labels[rows] == 0], minlength=len(part.keys))
    ratio = np.log((p / p.sum()) / (q / q.sum()))
    x = sparse.csr_matrix((ratio[column], (rows, column)), shape=(len(encoded), len(part.keys)))
    reference = LogisticRegression(C=1.0, max_iter=5000, tol=1e-8).fit(x, labels)
    expected = reference.decision_function(x)
    got = part.logits(*flat_ids(encoded))
    np.testing.assert_allclose(got, expected, atol=0.05)
    assert np.corrcoef(got, expected)[0, 1] > 0.9999


def test_logits_are_bias_plus_the_weights_of_the_ngrams_held(sliced):
    encoded, _, part, _ = sliced
    weight = dict(zip(part.keys.tolist(), part.weights.tolist()))
    for ids in encoded[:50]:
        grams = {tuple(ids[i:i + n].tolist()) for n in (1, 2, 3) for i in range(len(ids) - n + 1)}
        expected = part.bias + sum(weight.get(_key(*g), 0.0) for g in grams)
        got = part.logits(ids, np.array([len(ids)]))[0]
        assert got == pytest.approx(expected, abs=1e-4)


def test_blend_is_the_share_weighted_mean_of_the_two_logits(sliced):
    encoded, _, part, _ = sliced
    flat, lengths = flat_ids(encoded[:20])
    network = np.linspace(-2, 2, 20).astype(np.float32)
    expected = (1 - part.share) * network + part.share * part.logits(flat, lengths)
    np.testing.assert_allclose(part.blend(network, flat, lengths), expected, rtol=1e-6)


def test_ngrams_seen_in_fewer_messages_than_min_count_are_left_out(sliced):
    encoded, labels, part, model = sliced
    pruned = fit_ngrams(encoded, labels, model, TrainConfig(ngram_min_count=2))
    rows, keys = ngram_keys(*flat_ids(encoded), 3)
    table, counts = np.unique(keys, return_counts=True)
    assert pruned.keys.tolist() == table[counts >= 2].tolist()
    assert len(pruned.keys) < len(part.keys)


def test_unseen_ngrams_score_the_bias_and_an_empty_part_scores_it_alone(sliced):
    part = sliced[2]
    unseen = np.array([10 ** 6 - 1, 10 ** 6 - 2])
    assert part.logits(unseen, np.array([2]))[0] == pytest.approx(part.bias)
    empty = NgramModel(np.zeros(0, np.int64), np.zeros(0, np.float32), 0.25, 3, 0.5)
    assert empty.logits(unseen, np.array([1, 1])).tolist() == [0.25, 0.25]


def test_tensors_round_trip_and_damage_is_one_error(sliced):
    part, model = sliced[2], sliced[3]
    again = NgramModel.from_tensors(part.tensors(), model, "here")
    assert np.array_equal(again.keys, part.keys) and np.array_equal(again.weights, part.weights)
    assert again.bias == pytest.approx(part.bias)
    shuffled = {**part.tensors(), f"{PREFIX}keys": torch.from_numpy(part.keys[::-1].copy())}
    with pytest.raises(StocksentError, match="damaged"):
        NgramModel.from_tensors(shuffled, model, "here")
    repeated = part.keys.copy()
    repeated[1] = repeated[0]  # sorted still, but one n-gram twice
    with pytest.raises(StocksentError, match="keys unsorted or not one per weight"):
        NgramModel.from_tensors({**part.tensors(), f"{PREFIX}keys": torch.from_numpy(repeated)}, model, "here")
    with pytest.raises(StocksentError, match="incomplete"):
        NgramModel.from_tensors({f"{PREFIX}keys": torch.from_numpy(part.keys)}, model, "here")
    halved = {**part.tensors(), f"{PREFIX}weights": torch.from_numpy(part.weights).to(torch.bfloat16)}
    with pytest.raises(StocksentError, match="wrong type"):
        NgramModel.from_tensors(halved, model, "here")


def test_a_trained_model_scores_with_its_part_on_every_backend(trained_model, real_rows, tmp_path):
    config, _, state = load_model(trained_model)
    network_state, part_state = split_prefix(parts.network_state(state), PREFIX)[0], split_prefix(state, PREFIX)[1]
    assert config.model.ngrams == 3 and sorted(part_state) == [f"{PREFIX}bias", f"{PREFIX}keys", f"{PREFIX}weights"]
    # Built here from the saved tensors, apart from the classifier's scorers.
    network = load_weights(build_model(config.model), network_state, "saved").eval()
    part = NgramModel.from_tensors(part_state, config.model, "saved")
    clf = SentimentClassifier.load(trained_model)
    texts = [r["message"] for r in real_rows[3000:5100]]  # enough for the scoring pool's threads
    encoded = clf.encode(texts)
    with torch.inference_mode():
        network_logits = score_by_length(lambda tokens, lengths: network(tokens, lengths).numpy(), encoded)
    expected = (1 - config.model.ngram_share) * network_logits + config.model.ngram_share * part.logits(
        *flat_ids(encoded))
    assert np.abs(expected - network_logits).max() > 0.1  # the part moves the scores
    np.testing.assert_allclose(clf.decision_function(texts), expected, atol=1e-5)
    np.testing.assert_allclose(clf.decision_function(texts[:5]), expected[:5], atol=1e-5)
    pytest.importorskip("onnxruntime")
    from stocksent.scoring.export import export_onnx

    copy = shutil.copytree(trained_model, tmp_path / "m")  # the shared model's directory stays as trained
    export_onnx(copy)
    onnx = SentimentClassifier.load(copy, backend="onnx")
    np.testing.assert_allclose(onnx.decision_function(texts), expected, atol=1e-4)


def test_a_vocabulary_too_large_for_the_part_is_refused_before_training(data_slice, tmp_path, monkeypatch, capsys):
    from conftest import TINY
    from stocksent.cli import main
    from stocksent.scoring import ngrams

    monkeypatch.setattr(ngrams, "MAX_VOCAB", 100)
    out = tmp_path / "m"
    assert main(["train", "--data", str(data_slice), "--out", str(out), *TINY, "--pretraining", "none"]) == 1
    err = capsys.readouterr().err.strip()
    assert "the n-gram part takes vocabularies of up to 100 words" in err and "\n" not in err
    assert not (out / "config.json").exists()  # nothing trained, nothing saved


def test_a_model_saved_before_its_part_was_fitted_loads_as_the_network_alone(trained_model, tmp_path, real_rows):
    config, vocab, state = load_model(trained_model)
    network_state = parts.network_state(state)
    save_model(tmp_path / "mid", config, vocab, network_state, {})
    save_model(tmp_path / "unnamed", config.override("model", ngrams=0), vocab, state, {})
    with pytest.raises(StocksentError, match="n-gram part that its config does not name"):
        SentimentClassifier.load(tmp_path / "unnamed")
    clf = SentimentClassifier.load(tmp_path / "mid")
    assert clf.predictor_.parts == [] and clf.config.model.ngrams == 0
    texts = [r["message"] for r in real_rows[3000:3050]]
    full = SentimentClassifier.load(trained_model)
    network = full.predictor_.network_logits(*full.predictor_.encode_flat(texts))
    np.testing.assert_allclose(clf.decision_function(texts), network,
                               atol=1e-5)


def test_a_balanced_fit_weighs_the_rarer_label_as_much_as_the_other(sliced):
    encoded, labels, _, config = sliced
    keep = np.flatnonzero((labels == 1) | (np.arange(len(labels)) % 4 == 0))  # a quarter of the bearish ones
    encoded, labels = [encoded[i] for i in keep], labels[keep]
    plain, balanced = (fit_ngrams(encoded, labels, config, TrainConfig(balanced=b)) for b in (False, True))
    flat, lengths = flat_ids(encoded)
    said_bearish = [float((part.logits(flat, lengths) < 0).mean()) for part in (plain, balanced)]
    assert said_bearish[1] > said_bearish[0]
    assert balanced.bias < plain.bias  # its intercept no longer leans to the common label


def test_two_parts_add_up_to_one_whose_logits_are_their_sum(sliced):
    encoded, labels, part, model = sliced
    other = fit_ngrams(encoded[:800], labels[:800], ModelConfig(ngrams=2, vocab_size=model.vocab_size),
                       TrainConfig(ngram_min_count=1))
    both = part.plus(other)
    flat, lengths = flat_ids(encoded[1000:1300])
    np.testing.assert_allclose(both.logits(flat, lengths), part.logits(flat, lengths) + other.logits(flat, lengths),
                               rtol=0, atol=1e-4)
    assert both.longest == 3 and set(part.keys) | set(other.keys) == set(both.keys)


def test_a_part_fitted_on_a_prior_corrects_it_and_a_heavy_penalty_leaves_it_as_it_was(sliced):
    encoded, labels, prior, model = sliced
    new, new_labels = encoded[2000:], labels[2000:]
    flat, lengths = flat_ids(new)
    held = fit_ngrams(new, new_labels, model, TrainConfig(ngram_c=1e-6), prior)
    shift = held.logits(flat, lengths) - prior.logits(flat, lengths)
    assert np.ptp(shift) < 1e-3  # only the unpenalised intercept moved, to where the prior's
    proba = 1 / (1 + np.exp(-held.logits(flat, lengths).astype(np.float64)))  # logits then meet the labels' share
    assert abs(proba.mean() - new_labels.mean()) < 1e-3
    free = fit_ngrams(new, new_labels, model, TrainConfig(), prior)
    assert set(prior.keys) <= set(free.keys)
    loss = [float(torch.nn.functional.binary_cross_entropy_with_logits(
        torch.from_numpy(p.logits(flat, lengths)), torch.from_numpy(new_labels).float())) for p in (prior, free)]
    assert loss[1] < loss[0]  # the corrections fit the new messages
