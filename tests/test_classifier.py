import shutil
import threading

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from conftest import TINY
from stocksent import SentimentClassifier
from stocksent.cli import main
from stocksent.data.corpus import load_corpus
from stocksent.data.store import load_model, split_prefix
from stocksent.nets.folded import FoldedLSTM
from stocksent.nets.model import build_model, load_weights
from stocksent.scoring import predictor
from stocksent.scoring.ngrams import NgramModel
from stocksent.scoring.parts import network_state
from stocksent.text.preprocess import SPECIAL_TOKENS, tokenize
from stocksent.text.vocab import UNKNOWN

# The CLI's TINY flags as keywords.
SMALL = dict(embedding_dim=16, lstm_sizes=[16, 8], batch_size=64, epochs=2, min_freq=1, threads=1,
             schedule="constant")  # TINY's


@pytest.fixture(scope="module")
def messages(real_rows):
    rows = real_rows[:3000]
    return [r["message"] for r in rows], [r["sentiment"] for r in rows]


@pytest.fixture(scope="module")
def fitted(messages):
    texts, labels = messages
    return SentimentClassifier(**SMALL).fit(texts, labels)


def test_single_string_in_single_result_out(trained_model):
    clf = SentimentClassifier.load(trained_model)
    assert clf.predict("$SPY buy the dip") in ("bullish", "bearish")
    both = clf.predict_proba("$SPY buy the dip")
    assert both.shape == (2,) and both.sum() == pytest.approx(1.0)


def test_many_in_many_out_in_order(trained_model, real_rows):
    clf = SentimentClassifier.load(trained_model)
    texts = [r["message"] for r in real_rows[5000:5300]]
    prob = clf.predict_proba(texts)
    assert prob.shape == (300, 2) and np.all((prob >= 0) & (prob <= 1))
    np.testing.assert_allclose(prob.sum(axis=1), 1.0)
    assert list(clf.classes_) == ["bearish", "bullish"]  # columns in classes_ order
    assert clf.predict(texts).tolist() == [clf.classes_[int(p >= 0.5)] for p in prob[:, 1]]
    assert clf.predict_proba(texts[7])[1] == pytest.approx(float(prob[7, 1]), abs=1e-6)  # batch-size rounding only


def test_fit_in_memory_gives_the_weights_stocksent_train_gives(data_slice, tmp_path):
    assert main(["train", "--data", str(data_slice), "--out", str(tmp_path / "cli"), *TINY]) == 0
    clf = SentimentClassifier(**SMALL)
    config = clf.build_config()
    corpus = load_corpus(data_slice, config.data, config.preprocess)
    split = corpus.split(config.data)
    part = lambda name: ([corpus.texts[i] for i in split[name]],  # noqa: E731
                         np.array(["bearish", "bullish"])[corpus.labels[split[name]]])
    clf.fit(*part("train"), validation=part("val"))
    saved = load_file(tmp_path / "cli" / "model.safetensors")
    state = clf.state_dict()  # the networks and the n-gram part
    assert sorted(saved) == sorted(state)
    assert all(torch.equal(saved[name], state[name]) for name in saved)  # bit for bit
    cli_model = SentimentClassifier.load(tmp_path / "cli")
    assert clf.score(*part("test")) == cli_model.score(*part("test"))
    assert clf.score(*part("test")) == pytest.approx(cli_model.metrics["test"]["accuracy"], abs=2 / 300)


def test_fit_holds_out_validation_and_follows_the_contract(fitted, messages):
    texts, labels = messages
    assert fitted.metrics_["dataset"] == {"messages": 3000, "classes": ["bearish", "bullish"],
                                          "train_size": 2700, "val_size": 300}
    assert [row["epoch"] for row in fitted.history_] == [1, 2]
    assert fitted.predict(texts[:5]).dtype.kind == "U" and set(fitted.predict(texts)) <= {"bearish", "bullish"}
    assert 0.5 < fitted.score(texts, labels) <= 1.0
    assert fitted.get_params()["embedding_dim"] == 16 and fitted.get_params()["preset"] == "default"
    assert fitted.set_params(epochs=3) is fitted and fitted.get_params()["epochs"] == 3
    fitted.set_params(epochs=2)


def test_fit_takes_arrays_series_and_labels_as_numbers_or_booleans(messages):
    pd = pytest.importorskip("pandas")
    texts, labels = (np.asarray(column[:600]) for column in messages)
    bullish = labels == "bullish"
    for given, classes in ((pd.Series(labels), ["bearish", "bullish"]), (bullish.astype(int), [0, 1]),
                           (tuple(bullish.tolist()), [False, True])):
        clf = SentimentClassifier(**{**SMALL, "epochs": 1}).fit(pd.Series(texts), given)
        assert clf.classes_.tolist() == classes
        assert clf.predict(list(texts[:3])).tolist()[0] in classes
        prob = clf.predict_proba(tuple(texts[:4]))
        assert prob.shape == (4, 2)
        # The positive class is the second column, and predict follows it.
        assert clf.predict(texts[:4]).tolist() == [classes[int(p >= 0.5)] for p in prob[:, 1]]


def test_labels_as_numbers_or_booleans_survive_save_and_load(messages, tmp_path):
    texts, labels = messages[0][:600], np.asarray(messages[1][:600]) == "bullish"
    for given in (labels.astype(int), labels):
        clf = SentimentClassifier(**{**SMALL, "epochs": 1}).fit(texts, given)
        loaded = SentimentClassifier.load(clf.save(tmp_path / str(given.dtype)))
        assert loaded.classes_.tolist() == clf.classes_.tolist() == sorted(set(given.tolist()))
        assert loaded.predict(texts[:20]).tolist() == clf.predict(texts[:20]).tolist()
        assert loaded.score(texts, given) == clf.score(texts, given)


def test_a_validation_set_with_nothing_to_score_is_refused(messages):
    texts, labels = messages
    with pytest.raises(ValueError, match="no usable messages in the validation set"):
        SentimentClassifier(**SMALL).fit(texts, labels, validation=(["!!!", ""], ["bullish", "bearish"]))
    with pytest.raises(ValueError, match="hold one label only"):
        SentimentClassifier(**SMALL).fit(texts[:50] + ["..."] * 50, ["bullish"] * 50 + ["bearish"] * 50,
                                         validation=(texts[:10], labels[:10]))


def test_set_params_checks_every_name_before_changing_any():
    clf = SentimentClassifier(epochs=2)
    with pytest.raises(TypeError, match="bogus"):
        clf.set_params(preset="tutorial", bogus=1)
    assert clf.get_params()["preset"] == "default"
    with pytest.raises(ValueError, match="lstm_sizes must be a list of ints"):
        SentimentClassifier(lstm_sizes=64).build_config()
    assert SentimentClassifier(lstm_sizes=(16, 8)).build_config().model.lstm_sizes == [16, 8]


def test_save_writes_the_directory_train_writes_and_load_reads_it(fitted, messages, tmp_path, trained_model):
    folder = fitted.save(tmp_path / "mine")
    assert {p.name for p in folder.iterdir()} >= {p.name for p in trained_model.iterdir() if p.is_file()}
    loaded = SentimentClassifier.load(folder)
    texts = messages[0][:500]
    np.testing.assert_allclose(loaded.predict_proba(texts), fitted.predict_proba(texts), atol=1e-6)
    assert loaded.get_params() == fitted.get_params()  # the same recipe, so clone() rebuilds it


def test_sklearn_clone_and_cross_val_score(messages):
    from sklearn.base import clone
    from sklearn.model_selection import cross_val_score

    texts, labels = messages
    estimator = SentimentClassifier(epochs=1, threads=1)
    twin = clone(estimator)
    assert twin is not estimator and twin.get_params() == estimator.get_params()
    scores = cross_val_score(estimator, texts, labels, cv=3)
    assert scores.shape == (3,) and np.all((scores > 0.5) & (scores < 1))


@pytest.mark.parametrize("labels, error, match", [
    (["bullish"] * 2999, ValueError, "3000 texts but 2999 labels"),
    (["bullish"] * 3000, ValueError, "1 distinct value"),
    (["bullish", "bearish", "neutral"] * 1000, ValueError, "3 distinct value"),
    ("bullish", TypeError, "labels must be an iterable"),
])
def test_bad_labels_are_errors_that_say_what_to_fix(messages, labels, error, match):
    with pytest.raises(error, match=match):
        SentimentClassifier(**SMALL).fit(messages[0], labels)


def test_bad_texts_and_settings_are_errors_that_say_what_to_fix(messages):
    texts, labels = messages
    with pytest.raises(TypeError, match="item 1 is NoneType"):
        SentimentClassifier(**SMALL).fit([texts[0], None, texts[2]], labels[:3])
    with pytest.raises(TypeError, match="unknown hyperparameter.*embeding_dim"):
        SentimentClassifier(embeding_dim=16)
    with pytest.raises(ValueError, match="unknown preset"):
        SentimentClassifier(preset="best").fit(texts, labels)
    with pytest.raises(ValueError, match="dropout must be in"):
        SentimentClassifier(dropout=1.5).fit(texts, labels)
    with pytest.raises(ValueError, match="unknown label value.*'neutral'"):
        SentimentClassifier(**SMALL).fit(texts[:600], labels[:600], validation=(texts[:2], ["neutral", "bullish"]))


def test_predict_before_fit_is_not_fitted_error():
    from sklearn.exceptions import NotFittedError

    for call in (lambda c: c.predict(["$SPY"]), lambda c: c.predict_proba(["$SPY"]), lambda c: c.save("x"),
                 lambda c: c.score(["$SPY"], ["bullish"])):
        with pytest.raises(NotFittedError, match="call fit"):
            call(SentimentClassifier())


def test_encode_gives_the_vocabularys_ids_of_the_tokens(trained_model, real_rows):
    clf = SentimentClassifier.load(trained_model)
    texts = [r["message"] for r in real_rows[:5000]] + ["", "$SPY @bob www.x.com 4.5$ 12 🚀", "!!!"]
    limit = clf.config.preprocess.max_tokens
    expected = [clf.vocab.encode(tokenize(t, clf.config.preprocess.keep_emoji)[:limit]) or [UNKNOWN] for t in texts]
    assert [e.tolist() for e in clf.encode(texts)] == expected
    assert {UNKNOWN, *(clf.vocab.stoi[t] for t in SPECIAL_TOKENS)} <= {i for e in expected for i in e}


@pytest.fixture
def two_torch_threads():
    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    yield
    torch.set_num_threads(threads)


def test_large_inputs_score_on_threads_as_on_one(trained_model, real_rows, monkeypatch, two_torch_threads):
    clf = SentimentClassifier.load(trained_model)
    texts = [r["message"] for r in real_rows[:5000]]
    monkeypatch.setattr(predictor, "THREADED_FROM", len(texts) + 1)
    one_thread = clf.positive_proba(texts)
    monkeypatch.setattr(predictor, "THREADED_FROM", len(texts))
    scored_on, fold_score = [], FoldedLSTM.score
    monkeypatch.setattr(FoldedLSTM, "score", lambda self, *batch: scored_on.append(threading.get_ident())
                        or fold_score(self, *batch))
    threaded = clf.positive_proba(texts)
    assert len(set(scored_on)) == 2 and threading.get_ident() not in scored_on  # on the pool's two threads
    np.testing.assert_allclose(threaded, one_thread, atol=1e-6)  # same order, same scores
    assert torch.get_num_threads() == 2  # the workers' one thread each does not outlive the call


def test_an_error_in_a_scoring_thread_reaches_the_caller(trained_model, real_rows, monkeypatch, two_torch_threads):
    clf = SentimentClassifier.load(trained_model)
    monkeypatch.setattr(predictor, "THREADED_FROM", 100)
    failed_on = []

    def fail(self, *batch):
        failed_on.append(threading.get_ident())
        raise MemoryError("no room")
    monkeypatch.setattr(FoldedLSTM, "score", fail)
    with pytest.raises(MemoryError, match="no room"):
        clf.predict_proba([r["message"] for r in real_rows[:1000]])
    assert failed_on and threading.get_ident() not in failed_on  # raised on a pool thread, re-raised here
    assert torch.get_num_threads() == 2


def test_save_load_round_trip_gives_same_predictions(trained_model, tmp_path, real_rows):
    texts = [r["message"] for r in real_rows[6000:6500]]
    before = SentimentClassifier.load(trained_model).predict_proba(texts)
    shutil.copytree(trained_model, tmp_path / "moved")
    after = SentimentClassifier.load(tmp_path / "moved").predict_proba(texts)
    assert np.array_equal(before, after)


def test_a_network_in_memory_is_set_up_for_scoring_as_a_saved_one(trained_model, real_rows):
    config, vocab, state = load_model(trained_model)
    network, part = network_state(state), split_prefix(state, NgramModel.prefix)[1]
    in_memory = SentimentClassifier.from_model(load_weights(build_model(config.model), network, "memory"), vocab,
                                               config, ngrams=NgramModel.from_tensors(part, config.model, "memory"))
    texts = [r["message"] for r in real_rows[7000:7400]]
    assert np.array_equal(in_memory.predict_proba(texts), SentimentClassifier.load(trained_model).predict_proba(texts))


def test_empty_and_garbage_messages_still_scored(trained_model):
    clf = SentimentClassifier.load(trained_model)
    prob = clf.predict_proba(["", "!!!", "\x00\x01", "🚀" * 10_000])
    assert prob.shape == (4, 2) and np.isfinite(prob).all()
    assert clf.predict([]).tolist() == [] and clf.predict_proba([]).shape == (0, 2)


@pytest.mark.parametrize("texts, named", [(None, "NoneType"), (5, "int"), (b"$SPY", "bytes"),
                                           (["ok", None], "item 1 is NoneType"), ([1], "item 0 is int")])
def test_what_is_not_text_is_a_type_error_naming_it(trained_model, texts, named):
    clf = SentimentClassifier.load(trained_model)
    with pytest.raises(TypeError, match=named):
        clf.predict(texts)
    with pytest.raises(TypeError, match="explain takes one string"):
        clf.explain(["$SPY"])


def test_explain_is_occlusion_of_each_token(trained_model, real_rows):
    clf = SentimentClassifier.load(trained_model)
    text = "bought more calls today before the close"
    why = clf.explain(text, top=10)
    assert sorted(t for t, _ in why) == sorted(text.split())  # every token, once
    assert [abs(e) for _, e in why] == sorted((abs(e) for _, e in why), reverse=True)
    full = clf.predict_proba(text)[1]
    for token, effect in why:
        without = " ".join(w for w in text.split() if w != token)
        assert effect == pytest.approx(full - clf.predict_proba(without)[1], abs=1e-6)
    for row in real_rows[:200]:
        assert len(clf.explain(row["message"], top=3)) <= 3
    assert clf.explain("!!! ...") == []  # nothing left to leave out


def test_predict_explain_cli(trained_model, capsys):
    import json

    assert main(["predict", str(trained_model), "$SPY calls printing", "--explain", "--top", "2",
                 "--format", "jsonl"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert [e["token"] for e in record["explanation"]] and len(record["explanation"]) == 2
    assert {e["token"] for e in record["explanation"]} <= {"<TICKER>", "calls", "printing"}
    assert main(["predict", str(trained_model), "$SPY calls", "--explain"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and out[1].startswith("\t")


def test_the_loader_loads_the_classifier_again_with_the_threads_asked(trained_model, real_rows):
    clf = SentimentClassifier.load(trained_model)
    again = clf.loader(threads=1)()
    texts = [r["message"] for r in real_rows[:50]]
    assert isinstance(again, SentimentClassifier)
    np.testing.assert_array_equal(again.predict_proba(texts), clf.predict_proba(texts))
