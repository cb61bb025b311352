import shutil

import numpy as np
import pytest

from stocksent import SentimentClassifier
from stocksent.preprocess import SPECIAL_TOKENS, tokenize
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


def test_save_load_round_trip_gives_same_predictions(trained_model, tmp_path, real_rows):
    texts = [r["message"] for r in real_rows[6000:6500]]
    before = SentimentClassifier.load(trained_model).predict_proba(texts)
    shutil.copytree(trained_model, tmp_path / "moved")
    after = SentimentClassifier.load(tmp_path / "moved").predict_proba(texts)
    assert np.array_equal(before, after)


def test_empty_and_garbage_messages_still_scored(trained_model):
    clf = SentimentClassifier.load(trained_model)
    prob = clf.predict_proba(["", "!!!", "\x00\x01", "🚀" * 10_000])
    assert prob.shape == (4,) and np.isfinite(prob).all()
    assert clf.predict([]) == []


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
