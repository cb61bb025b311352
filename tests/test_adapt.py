"""Adaptation to a new market: the rounds of self-training, the classifier's adapt, and `stocksent adapt`."""
from __future__ import annotations

import hashlib
import re

import numpy as np
import pandas as pd
import pytest
import torch

from conftest import write_csv
from stocksent.classifier import SentimentClassifier
from stocksent.cli import main
from stocksent.config import ModelConfig, TrainConfig
from stocksent.data.batches import score_by_length
from stocksent.data.store import load_model, split_prefix
from stocksent.errors import StocksentError
from stocksent.nets.model import build_model, load_weights
from stocksent.scoring.calibration import CalibrationSet
from stocksent.scoring.metrics import sigmoid
from stocksent.scoring.ngrams import NgramModel, fit_ngrams, flat_ids
from stocksent.scoring.parts import network_state
from stocksent.scoring.priors import PREFIX, TickerPriors
from stocksent.scoring.quantify import Calibration
from stocksent.text.preprocess import first_ticker, tokenize
from stocksent.text.vocab import Vocab
from stocksent.training.adapt import Check, check_not_worse, market_share, self_train, ticker_priors


@pytest.fixture(scope="module")
def tagged(real_rows):
    """The real slice's first 2,000 messages as word ids and labels, its part, and its config."""
    tokens = [tokenize(r["message"]) for r in real_rows[:2000]]
    vocab = Vocab.build(tokens, 1)
    encoded = [np.asarray(vocab.encode(t) or [1], dtype=np.int64) for t in tokens]
    labels = np.array([r["sentiment"] == "bullish" for r in real_rows[:2000]], dtype=np.int64)
    model = ModelConfig(ngrams=2, vocab_size=len(vocab) + 2)  # two ids past the vocabulary: words only a market has
    train = TrainConfig(ngram_min_count=1)
    return encoded, labels, fit_ngrams(encoded, labels, model, train), model, train, vocab


def test_the_part_learns_words_only_the_market_holds_from_the_guesses(tagged):
    encoded, labels, part, model, train, vocab = tagged
    words = np.arange(2, len(vocab))
    alone = part.logits(words, np.ones_like(words))
    bull, bear = words[alone.argmax()], words[alone.argmin()]  # the most bullish and bearish words alone
    assert alone.max() > 0 > alone.min()
    new_bull, new_bear = len(vocab), len(vocab) + 1  # never in a tagged message
    market = [np.array([bull, new_bull])] * 40 + [np.array([bear, new_bear])] * 40
    before = part.logits(np.array([new_bull, new_bear]), np.array([1, 1]))
    assert before[0] == before[1]  # unseen: both score the bias alone
    adapted, rounds = self_train(np.zeros(80, np.float32), market, encoded, labels, part, model, train,
                                 threshold=0.5, rounds=1, share=0.5, log=lambda line: None)
    after = adapted.logits(np.array([new_bull, new_bear]), np.array([1, 1]))
    assert after[0] > before[0] > after[1]
    assert rounds == [{"round": 1, "kept": 80, "positive_share": 0.5}]


def test_each_round_refits_on_the_tagged_messages_and_the_sure_guesses_until_they_stop_growing(tagged, real_rows):
    encoded, labels, part, model, train, vocab = tagged
    market = [np.asarray(vocab.encode(tokenize(r["message"])) or [1], dtype=np.int64) for r in real_rows[2000:3000]]
    network = np.random.default_rng(0).normal(0, 2, len(market)).astype(np.float32)
    lines = []
    adapted, rounds = self_train(network, market, encoded, labels, part, model, train, 0.8, 20, 0.6, lines.append)
    # Computed here apart, round by round, from the same inputs: as many kept as are sure, 60% of
    # them the most bullish guesses and the rest the most bearish.
    current, kept = part, []
    for _ in rounds:
        p = sigmoid(current.blend(network, *flat_ids(market)))
        count = np.count_nonzero((p >= 0.8) | (p <= 0.2))
        ranked, bullish = np.argsort(p, kind="stable"), round(0.6 * count)
        chosen = list(ranked[len(p) - bullish:]) + list(ranked[:count - bullish])
        kept.append(count)
        current = fit_ngrams(encoded + [market[i] for i in chosen],
                             np.array(list(labels) + [1] * bullish + [0] * (count - bullish)), model, train)
    assert [row["kept"] for row in rounds] == kept
    assert all(later >= 1.05 * earlier for earlier, later in zip(kept, kept[1:]))
    np.testing.assert_array_equal(adapted.keys, current.keys)
    np.testing.assert_allclose(adapted.weights, current.weights, atol=1e-6)
    assert len(rounds) < 20 and lines[-1].endswith("stopped")  # the next round's guesses grew by under 5%
    p = sigmoid(current.blend(network, *flat_ids(market)))
    assert np.count_nonzero((p >= 0.8) | (p <= 0.2)) < 1.05 * kept[-1]


def test_bad_settings_and_a_market_with_no_sure_guess_are_one_error_each(tagged):
    encoded, labels, part, model, train, _ = tagged
    market = [np.array([5, 6])] * 3
    for threshold, rounds in ((0.4, 5), (1.0, 5), (0.9, 0), (0.9, 21)):
        with pytest.raises(StocksentError):
            self_train(np.zeros(3, np.float32), market, encoded, labels, part, model, train, threshold, rounds)
    with pytest.raises(StocksentError, match="none of the 3 messages is guessed with p >= 0.99"):
        self_train(np.zeros(3, np.float32), market, encoded, labels, part, model, train, 0.99, 5)


@pytest.fixture
def lenient(monkeypatch):
    """The checks let through, for the tests of what adapting does: the tiny model here loses
    ROC-AUC on its test split when its part learns from its own guesses, and its few validation
    messages make a market's probabilities look unlike them."""
    from stocksent.training import adapt

    monkeypatch.setattr(adapt, "MAX_FALL", 1.0)
    monkeypatch.setattr(adapt, "MAX_MISFIT", float("inf"))


def _shifts(state, texts):
    """Each message's logit shift, read off the saved ticker list by its first cashtag."""
    names = state["priors.tickers"].numpy().tobytes().decode().split("\n")
    table = dict(zip(names, state["priors.shifts"].numpy()))
    default = float(state["priors.default"][0])
    return np.array([table.get(first_ticker(text), default) for text in texts], dtype=np.float32)


def _digests(folder):
    return {path.name: hashlib.sha256(path.read_bytes()).hexdigest() for path in folder.iterdir() if path.is_file()}


def test_stocksent_adapt_writes_a_new_model_whose_networks_are_the_trained_ones(trained_model, real_rows, tmp_path,
                                                                                capsys, lenient):
    market = write_csv(tmp_path / "market.csv", real_rows[3000:4000], ["message"])
    source = _digests(trained_model)
    out = tmp_path / "adapted"
    assert main(["adapt", str(trained_model), "--text", str(market), "--threshold", "0.5", "--out", str(out),
                 "--json"]) == 0
    captured = capsys.readouterr()
    assert "round 1: refitted on" in captured.err
    assert _digests(trained_model) == source  # the model adapted is kept as it was
    _, _, before = load_model(trained_model)
    _, _, after = load_model(out)
    (before, priors_before), (after, priors_after) = split_prefix(before, PREFIX), split_prefix(after, PREFIX)
    net_before, net_after = network_state(before), network_state(after)
    part_before, part_after = (split_prefix(state, NgramModel.prefix)[1] for state in (before, after))
    assert sorted(net_before) == sorted(net_after)
    assert all(np.array_equal(net_before[k].numpy(), net_after[k].numpy()) for k in net_before)
    assert not np.array_equal(part_before["ngrams.weights"].numpy(), part_after["ngrams.weights"].numpy())
    assert sorted(priors_after) == ["priors.default", "priors.shifts", "priors.tickers"] and not priors_before
    clf = SentimentClassifier.load(out)
    adaptation = clf.metrics["adaptation"]
    assert adaptation["messages"] == 1000 and adaptation["rounds"][0]["kept"] == 1000  # p >= 0.5 or <= 0.5: all
    assert clf.metrics["test"]["n"] == SentimentClassifier.load(trained_model).metrics["test"]["n"]
    # The metrics saved are of the adapted model: scored again, they are the same.
    from stocksent.evaluation.experiment import split_messages

    test_texts, test_codes = split_messages(clf, split="test")
    assert clf.evaluate(test_texts, clf.classes_[test_codes])["accuracy"] == clf.metrics["test"]["accuracy"]
    # So is the calibration set the index reads: the validation split as the adapted model scores it.
    val_texts, val_codes = split_messages(clf, split="val")
    calibration = clf.predictor_.part(CalibrationSet)
    np.testing.assert_allclose(calibration.calibration().values,
                               sigmoid(clf.predictor_.without(TickerPriors).logits(val_texts)), atol=1e-6)
    np.testing.assert_array_equal(calibration.calibration().positives, val_codes)
    # Its scores: the networks blended with the refitted part, plus each message's ticker shift,
    # all built here from the saved tensors, apart from the classifier's scorers.
    texts = [r["message"] for r in real_rows[3000:3300]]
    config = clf.config
    network = load_weights(build_model(config.model), net_after, "saved").eval()
    encoded = clf.encode(texts)
    with torch.inference_mode():
        network_logits = score_by_length(lambda tokens, lengths: network(tokens, lengths).numpy(), encoded)
    part = NgramModel.from_tensors(part_after, config.model, "saved")
    shift = _shifts(priors_after, texts)
    assert len(set(np.round(shift, 4))) > 1  # tickers shift by different amounts
    np.testing.assert_allclose(clf.decision_function(texts),
                               part.blend(network_logits, *flat_ids(encoded)) + shift, atol=1e-5)
    shifted = clf.explain(texts[0], top=3)
    unshifted = SentimentClassifier.load(out)
    unshifted.predictor_ = unshifted.predictor_.without(TickerPriors)
    assert [w for w, _ in shifted] == [w for w, _ in unshifted.explain(texts[0], top=3)]
    assert [e for _, e in shifted] != [e for _, e in unshifted.explain(texts[0], top=3)]  # on the shifted scale
    # Adapting the adapted model again estimates from its scores without priors: the same priors.
    again = SentimentClassifier.load(out).adapt(texts, ([r["message"] for r in real_rows[:500]],
                                                        [r["sentiment"] for r in real_rows[:500]]), rounds=0)
    once = SentimentClassifier.load(out)
    once.predictor_ = once.predictor_.without(TickerPriors)
    once.adapt(texts, ([r["message"] for r in real_rows[:500]], [r["sentiment"] for r in real_rows[:500]]), rounds=0)
    np.testing.assert_allclose(again.decision_function(texts), once.decision_function(texts), atol=1e-6)
    pytest.importorskip("onnxruntime")
    from stocksent.scoring.export import export_onnx

    export_onnx(out)
    onnx = SentimentClassifier.load(out, backend="onnx")
    np.testing.assert_allclose(onnx.decision_function(texts), clf.decision_function(texts), atol=1e-4)


def test_adapt_can_leave_out_either_step(trained_model, real_rows, tmp_path, lenient):
    market = write_csv(tmp_path / "market.csv", real_rows[3000:3600], ["message"])
    _, _, trained = load_model(trained_model)
    for flags, refit, priors in ((["--no-priors"], True, False), (["--rounds", "0"], False, True)):
        out = tmp_path / "-".join(flags)
        assert main(["adapt", str(trained_model), "--text", str(market), "--threshold", "0.5", "--out", str(out),
                     *flags]) == 0
        state, saved_priors = split_prefix(load_model(out)[2], PREFIX)
        assert bool(saved_priors) == priors
        same_part = np.array_equal(state["ngrams.weights"].numpy(), trained["ngrams.weights"].numpy())
        assert same_part != refit
        assert ("priors" in SentimentClassifier.load(out).metrics["adaptation"]) == priors


def test_stocksent_adapt_refuses_bad_requests_in_one_line_and_writes_nothing(trained_model, real_rows, tmp_path,
                                                                            capsys):
    market = write_csv(tmp_path / "market.csv", real_rows[3000:3100], ["message"])
    unknown = tmp_path / "unknown.txt"  # plain text, a message a line, of words the model never saw
    unknown.write_text("zzqx vvbn\nqqpl\n", encoding="utf-8")
    out = tmp_path / "adapted"
    cases = [
        (market, ["--threshold", "1.5"], "the threshold must be in [0.5, 1)"),
        (market, ["--rounds", "21"], "rounds must be between 0 (the n-gram part left as it is) and 20"),
        (market, ["--text-column", "body"], "body"),
        (unknown, ["--threshold", "0.999"], "none of the 2 messages is guessed with p >= 0.999"),
    ]
    for text, extra, message in cases:
        assert main(["adapt", str(trained_model), "--text", str(text), "--out", str(out), *extra]) == 1
        err = capsys.readouterr().err.strip()
        assert message in err and "\n" not in err and "Traceback" not in err
        assert not out.exists()
    assert main(["adapt", str(trained_model), "--text", str(tmp_path / "none.csv"), "--out", str(out)]) == 1
    assert "none.csv" in capsys.readouterr().err
    assert main(["adapt", str(trained_model), "--text", str(market), "--out", str(trained_model)]) == 1
    assert "another directory than MODEL_DIR" in capsys.readouterr().err
    out.mkdir()
    (out / "config.json").write_text("{}")
    assert main(["adapt", str(trained_model), "--text", str(market), "--out", str(out)]) == 1
    assert "already holds a model" in capsys.readouterr().err


def test_adapt_in_python_needs_a_part_and_known_labels(trained_model, real_rows):
    clf = SentimentClassifier.load(trained_model)
    market = [r["message"] for r in real_rows[3000:3100]]
    tagged = ([r["message"] for r in real_rows[:500]], [r["sentiment"] for r in real_rows[:500]])
    scores = clf.decision_function(market)
    with pytest.raises(ValueError, match="unknown label value"):
        clf.adapt(market, (tagged[0], ["up"] * 500))
    with pytest.raises(StocksentError, match="no market messages"):
        clf.adapt([], tagged)
    with pytest.raises(StocksentError, match="lower the threshold"):  # fails after the networks have scored
        clf.adapt(["zzqx vvbn"], tagged, threshold=0.999)
    np.testing.assert_array_equal(clf.decision_function(market), scores)  # each error left it as it was
    assert clf.predictor_.part(TickerPriors) is None and "adaptation" not in clf.metrics
    alone = SentimentClassifier.from_model(clf.predictor_.network, clf.vocab, clf.config.override("model", ngrams=0))
    with pytest.raises(StocksentError, match="no n-gram part to adapt"):
        alone.adapt(market, tagged)
    before = alone.decision_function(market)
    alone.adapt(market, tagged, rounds=0)  # its ticker priors alone
    np.testing.assert_allclose(alone.decision_function(market), before + _shifts(alone.state_dict(), market),
                               atol=1e-5)
    before = clf.decision_function(market)
    assert clf.adapt(market, tagged, threshold=0.5, rounds=2) is clf
    assert clf.version_ is None and not np.allclose(clf.decision_function(market), before)
    with pytest.raises(StocksentError, match="needs a model loaded from a directory"):
        clf.loader()  # its directory holds the model before adaptation


@pytest.mark.parametrize("threshold, rounds, reason", [
    (1.0, 5, r"^the threshold must be in \[0\.5, 1\): guesses with p >= it or <= 1 - it are kept$"),
    (1.2, 5, r"^the threshold must be in \[0\.5, 1\)"),
    (0.4999, 5, r"^the threshold must be in \[0\.5, 1\)"),
    (0.9, -1, r"^rounds must be between 0 \(the n-gram part left as it is\) and 20$"),
    (0.9, 21, r"^rounds must be between 0 \(the n-gram part left as it is\) and 20$"),
], ids=["threshold-1.0", "threshold-1.2", "threshold-0.4999", "rounds--1", "rounds-21"])
def test_settings_out_of_range_are_refused_for_that_reason(tagged, threshold, rounds, reason):
    from stocksent.training.adapt import check_settings

    encoded, labels, part, model, train, _ = tagged
    with pytest.raises(StocksentError, match=reason):
        check_settings(threshold, rounds)
    with pytest.raises(StocksentError, match=reason):  # before any guess: 0.0 and 1.0 would be sure
        self_train(np.array([-20.0, 20.0], np.float32), [np.array([5]), np.array([6])], encoded, labels, part,
                   model, train, threshold, rounds, log=lambda line: None)
    for allowed in ((0.5, 0), (0.999, 20)):
        check_settings(*allowed)  # the ends of the ranges are allowed


def test_a_round_keeps_the_sure_guesses_of_either_label_and_records_their_positive_share(tagged):
    encoded, labels, part, model, train, _ = tagged
    # The networks are sure of 30 messages one way and of 10 the other.
    network = np.array([30.0] * 30 + [-30.0] * 10, np.float32)
    market = [encoded[i] for i in range(40)]
    guess = sigmoid(part.blend(network, *flat_ids(market)))
    assert np.all(guess[:30] >= 0.9) and np.all(guess[30:] <= 0.1)
    _, rounds = self_train(network, market, encoded, labels, part, model, train, threshold=0.9, rounds=1,
                           share=0.75, log=lambda line: None)
    assert rounds == [{"round": 1, "kept": 40, "positive_share": 0.75}]
    # In a market estimated at half bullish, the 40 kept are the 20 most bullish and 20 most bearish.
    _, rounds = self_train(network, market, encoded, labels, part, model, train, threshold=0.9, rounds=1,
                           share=0.5, log=lambda line: None)
    assert rounds == [{"round": 1, "kept": 40, "positive_share": 0.5}]


def _tagged(rng, n, share, trained=0.5):
    """Calibrated posteriors at training share `trained` for n messages, a `share` of them
    positive, and their labels."""
    labels = rng.random(n) < share
    evidence = np.where(labels, 1.5, -1.5) + rng.normal(0, 1.7, n)
    return sigmoid(2 * 1.5 * evidence / 1.7 ** 2 + np.log(trained / (1 - trained))), labels


def _posteriors(rng, n, share, trained=0.5):
    return _tagged(rng, n, share, trained)[0]


def _calibration(rng, trained=0.5):
    return Calibration.of(*_tagged(rng, 3000, 0.5), trained)


def test_the_market_s_share_moves_from_the_training_share_only_as_far_as_its_interval_allows():
    rng = np.random.default_rng(0)
    cal = _calibration(rng)
    share, record = market_share(_posteriors(rng, 20_000, 0.8), cal)
    assert abs(record["estimated"] - 0.8) < 0.02 and 0.5 < share < record["estimated"]
    assert share == pytest.approx(record["low"], abs=1e-4)  # the end of the interval nearest the training share
    few, record = market_share(_posteriors(rng, 12, 0.6), cal)
    assert record["low"] <= 0.5 <= record["high"] and few == 0.5  # twelve messages cannot tell 0.6 from 0.5


def test_each_ticker_s_prior_moves_from_the_market_s_only_as_far_as_its_interval_allows():
    rng = np.random.default_rng(1)
    unsure = np.array([0.45, 0.6, 0.55])  # three messages the model can hardly read
    proba = np.concatenate([_posteriors(rng, 6000, 0.9), _posteriors(rng, 6000, 0.3), unsure])
    texts = ["$BULL up"] * 6000 + ["$BEAR down"] * 6000 + ["$RARE meh"] * 3
    priors, record = ticker_priors(proba, texts, _calibration(rng), market=0.6, log=lambda line: None)
    shift = dict(zip(priors.tickers, priors.shifts))
    assert priors.tickers == ["BEAR", "BULL", "RARE"] and record["apart"] == 2
    prior = {t: float(sigmoid(s)) for t, s in shift.items()}  # against a training share of one half
    assert 0.85 < prior["BULL"] < 0.9 and 0.3 < prior["BEAR"] < 0.35 and prior["RARE"] == pytest.approx(0.6)
    assert float(sigmoid(priors.default)) == pytest.approx(0.6)


def test_an_adaptation_that_scores_worse_is_refused_naming_what_fell(trained_model, real_rows):
    before = SentimentClassifier.load(trained_model).predictor_
    after = before.with_part(TickerPriors([], np.zeros(0), -4.0))  # every message pushed bearish
    rows = real_rows[4000:4400]
    check = Check("the market's tags", [r["message"] for r in rows],
                  np.array([r["sentiment"] == "bullish" for r in rows], dtype=np.int64), ("accuracy", "roc_auc"))
    with pytest.raises(StocksentError, match=r"^adapting would make the model worse: accuracy on the market's tags "
                                             r"0\.\d+ -> 0\.\d+ \(-0\.\d+\); nothing adapted$"):
        check_not_worse(before, after, [check])  # ROC-AUC is the same under one shift for all
    assert [row["metric"] for row in check_not_worse(before, before, [check])] == ["accuracy", "roc_auc"]


def test_stocksent_adapt_that_would_make_the_model_worse_saves_nothing(trained_model, real_rows, tmp_path, capsys,
                                                                      monkeypatch):
    from stocksent.training import adapt

    monkeypatch.setattr(adapt, "MAX_FALL", -1.0)  # any adaptation now counts as worse
    market = write_csv(tmp_path / "market.csv", real_rows[3000:3400], ["message"])
    tags = write_csv(tmp_path / "tags.csv", real_rows[3400:3700], ["message", "sentiment"])
    source = _digests(trained_model)
    out = tmp_path / "adapted"
    assert main(["adapt", str(trained_model), "--text", str(market), "--calibrate", str(tags), "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("stocksent: error: adapting would make the model worse: roc_auc on the held-out "
                              "messages") and "on the market's tags" in err[-1]
    assert not out.exists() and _digests(trained_model) == source


def test_stocksent_adapt_refuses_a_market_unlike_the_model_s_messages_without_its_tags(trained_model, real_rows,
                                                                                       tmp_path, capsys):
    # A market of price news, each read alike: no mix of the model's bullish and bearish messages.
    news = [{"message": f"$SPY closed at {240 + i / 10:.2f} on volume {1000 + i}"} for i in range(400)]
    market = write_csv(tmp_path / "market.csv", news, ["message"])
    source, out = _digests(trained_model), tmp_path / "adapted"
    assert main(["adapt", str(trained_model), "--text", str(market), "--threshold", "0.5", "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert re.fullmatch(r"stocksent: error: the market's messages do not read as a mix of bullish and bearish "
                        r"ones like the model's \(misfit 0\.\d{3} > 0\.2\): .* "
                        r"\(--calibrate FILE, market_tags in Python\); nothing adapted", err[-1])
    assert not out.exists() and _digests(trained_model) == source


def test_adapting_in_python_makes_the_calibration_set_again_from_the_validation_split(trained_model, real_rows,
                                                                                      lenient):
    from stocksent.evaluation.experiment import split_messages

    texts = [r["message"] for r in real_rows[3000:3600]]
    clf = SentimentClassifier.load(trained_model)
    train, val = (split_messages(clf, split=name) for name in ("train", "val"))
    tagged = (train[0], clf.classes_[train[1]])
    carried = clf.predictor_.part(CalibrationSet).calibration().values
    kept = SentimentClassifier.load(trained_model).adapt(texts, tagged, threshold=0.5, rounds=0)
    np.testing.assert_array_equal(kept.predictor_.part(CalibrationSet).calibration().values, carried)
    again = SentimentClassifier.load(trained_model).adapt(texts, tagged, threshold=0.5,
                                                          validation=(val[0], clf.classes_[val[1]]))
    rescored = sigmoid(again.predictor_.without(TickerPriors).logits(val[0]))
    np.testing.assert_allclose(again.predictor_.part(CalibrationSet).calibration().values, rescored, atol=1e-6)
    assert not np.allclose(rescored, carried)  # the refitted part reads the split otherwise
    frame = pd.DataFrame({"message": texts, "created_at": ["2021-01-04T10:00:00Z"] * len(texts)})
    assert len(again.index(frame)) > 0
    dropped = SentimentClassifier.load(trained_model).adapt(texts, tagged, threshold=0.5)
    assert dropped.predictor_.part(CalibrationSet) is None
    with pytest.raises(StocksentError, match="adapted in Python without its validation split"):
        dropped.index(frame)
