import shutil
import threading

import numpy as np
import pytest
import torch

from stocksent import SentimentClassifier, classifier
from stocksent.folded import FoldedLSTM
from stocksent.model import build_model, load_weights
from stocksent.preprocess import SPECIAL_TOKENS, tokenize
from stocksent.store import load_model
from stocksent.vocab import UNKNOWN


def test_single_string_in_single_result_out(trained_model):
    clf = SentimentClassifier.load(trained_model)
    assert clf.predict("$SPY buy the dip") in ("bullish", "bearish")
    assert isinstance(clf.predict_proba("$SPY buy the dip"), float)


def test_many_in_many_out_in_order(trained_model, real_rows):
    clf = SentimentClassifier.load(trained_model)
    texts = [r["message"] for r in real_rows[5000:5300]]
    prob = clf.predict_proba(texts)
    assert prob.shape == (300,) and np.all((prob >= 0) & (prob <= 1))
    assert clf.predict(texts) == [clf.labels[int(p >= 0.5)] for p in prob]
    assert clf.predict_proba(texts[7]) == pytest.approx(float(prob[7]), abs=1e-6)  # batch-size rounding only


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
    monkeypatch.setattr(classifier, "THREADED_FROM", len(texts) + 1)
    one_thread = clf.predict_proba(texts)
    monkeypatch.setattr(classifier, "THREADED_FROM", len(texts))
    scored_on, fold_scores = [], clf._fold_scores
    clf._fold_scores = lambda *encoded: scored_on.append(threading.get_ident()) or fold_scores(*encoded)
    threaded = clf.predict_proba(texts)
    assert len(scored_on) == 4 and threading.get_ident() not in scored_on  # 4 chunks of 1,250 on the pool
    np.testing.assert_allclose(threaded, one_thread, atol=1e-6)  # same order, same scores
    assert torch.get_num_threads() == 2  # the workers' one thread each does not outlive the call


def test_an_error_in_a_scoring_thread_reaches_the_caller(trained_model, real_rows, monkeypatch, two_torch_threads):
    clf = SentimentClassifier.load(trained_model)
    monkeypatch.setattr(classifier, "THREADED_FROM", 100)

    failed_on = []

    def fail(*encoded):
        failed_on.append(threading.get_ident())
        raise MemoryError("no room")
    clf._fold_scores = fail
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
    in_memory = SentimentClassifier.from_model(load_weights(build_model(config.model), state, "memory"), vocab, config)
    assert isinstance(in_memory._scorer, FoldedLSTM)
    texts = [r["message"] for r in real_rows[7000:7400]]
    assert np.array_equal(in_memory.predict_proba(texts), SentimentClassifier.load(trained_model).predict_proba(texts))


def test_empty_and_garbage_messages_still_scored(trained_model):
    clf = SentimentClassifier.load(trained_model)
    prob = clf.predict_proba(["", "!!!", "\x00\x01", "🚀" * 10_000])
    assert prob.shape == (4,) and np.isfinite(prob).all()
    assert clf.predict([]) == []


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
    full = clf.predict_proba(text)
    for token, effect in why:
        without = " ".join(w for w in text.split() if w != token)
        assert effect == pytest.approx(full - clf.predict_proba(without), abs=1e-6)
    for row in real_rows[:200]:
        assert len(clf.explain(row["message"], top=3)) <= 3
    assert clf.explain("!!! ...") == []  # nothing left to leave out


def test_predict_explain_cli(trained_model, capsys):
    import json

    from stocksent.cli import main

    assert main(["predict", str(trained_model), "$SPY calls printing", "--explain", "--top", "2",
                 "--format", "jsonl"]) == 0
    record = json.loads(capsys.readouterr().out)
    assert [e["token"] for e in record["explanation"]] and len(record["explanation"]) == 2
    assert {e["token"] for e in record["explanation"]} <= {"<TICKER>", "calls", "printing"}
    assert main(["predict", str(trained_model), "$SPY calls", "--explain"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == 2 and out[1].startswith("\t")
