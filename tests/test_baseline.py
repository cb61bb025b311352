import json

import numpy as np
import pytest

from stocksent.cli import main
from stocksent.errors import StocksentError


def test_baselines_score_the_lstm_split(data_slice, trained_model, capsys):
    assert main(["baseline", "--data", str(data_slice), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    lstm = json.loads((trained_model / "metrics.json").read_text())
    # The same test split as the LSTM trained with the default preset: same size, same majority rate.
    assert result["split"]["test_size"] == lstm["dataset"]["test_size"] == result["tfidf_logreg"]["test"]["n"]
    assert result["majority"]["test"]["accuracy"] == lstm["test"]["majority_accuracy"]
    tfidf = result["tfidf_logreg"]["test"]
    assert tfidf["accuracy"] > result["majority"]["test"]["accuracy"] + 0.03 and 0.5 < tfidf["roc_auc"] <= 1
    assert result["tfidf_logreg"]["C"] in (0.5, 1.0, 2.0, 4.0, 8.0)


def test_grouped_split_keeps_copies_together(data_slice, capsys):
    assert main(["baseline", "--data", str(data_slice), "--group-duplicates", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["split"]["group_duplicates"] is True


def test_too_little_text_for_tfidf_is_one_line(tmp_path, capsys):
    words = ["buy", "sell", "moon", "puts", "calls", "dip", "rip", "red", "green", "up", "down", "flat"]
    path = tmp_path / "few.csv"  # every word once: nothing for TF-IDF to keep at min_df=2
    path.write_text("message,sentiment\n" + "".join(f"{w},{('bullish', 'bearish')[i % 2]}\n"
                                                      for i, w in enumerate(words)))
    assert main(["baseline", "--data", str(path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("stocksent: error: too little text") and "\n" not in err


def test_each_baseline_scores_the_same_split(data_slice, capsys):
    pytest.importorskip("fasttext")
    assert main(["baseline", "--data", str(data_slice), "--model", "all", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert set(result) == {"split", "majority", "tfidf_logreg", "nbsvm", "fasttext"}
    for name in ("tfidf_logreg", "nbsvm", "fasttext"):
        test = result[name]["test"]
        assert test["n"] == result["split"]["test_size"] and 0.6 < test["accuracy"] < 1 and test["roc_auc"] > 0.6
    assert result["nbsvm"]["C"] in (0.5, 1.0, 2.0, 4.0, 8.0)
    assert {"wordNgrams", "epoch", "lr", "failed_grid_points"} <= set(result["fasttext"])
    assert main(["baseline", "--data", str(data_slice), "--model", "nbsvm", "--json"]) == 0
    alone = json.loads(capsys.readouterr().out)
    assert set(alone) == {"split", "majority", "nbsvm"} and alone["nbsvm"]["test"] == result["nbsvm"]["test"]


def test_nbsvm_scales_each_ngram_by_its_log_count_ratio():
    from stocksent.evaluation.baseline import NBSVM

    tokens = [["buy", "calls"], ["buy"], ["puts"], ["sell", "puts"]]
    labels = np.array([1, 1, 0, 0])
    nb = NBSVM()
    features = nb.fit_features([" ".join(t) for t in tokens], labels)
    vocab = nb.vectorizer.vocabulary_
    # p and q: add-one smoothed counts in positive and in negative messages, normalised.
    positive = 1 + np.asarray(nb.vectorizer.transform(["buy calls", "buy"]).sum(axis=0)).ravel()
    negative = 1 + np.asarray(nb.vectorizer.transform(["puts", "sell puts"]).sum(axis=0)).ravel()
    expected = np.log((positive / positive.sum()) / (negative / negative.sum()))
    np.testing.assert_allclose(nb.ratio, expected)
    assert nb.ratio[vocab["buy"]] > 0 > nb.ratio[vocab["puts"]]
    row = features[1].toarray().ravel()  # "buy" alone: only its column, at its ratio
    assert row[vocab["buy"]] == expected[vocab["buy"]] and np.count_nonzero(row) == 1


def test_fasttext_grid_points_that_diverge_count_as_failed(data_slice, monkeypatch):
    fasttext = pytest.importorskip("fasttext")
    from stocksent.config import preset
    from stocksent.data.corpus import load_corpus
    from stocksent.evaluation import baseline

    real = fasttext.train_supervised

    def diverging(**settings):
        if settings["lr"] == 0.5:
            raise RuntimeError("Encountered NaN.")
        return real(**settings)
    monkeypatch.setattr(fasttext, "train_supervised", diverging)
    config = preset("default")
    corpus = load_corpus(data_slice, config.data, config.preprocess)
    parts = baseline.corpus_parts(corpus, corpus.split(config.data))
    scores, _ = baseline.score_baseline("fasttext", parts, ("bearish", "bullish"))
    # Every point at lr 0.5 failed (on this slice a few at lr 0.1 diverge by themselves too).
    assert scores["failed_grid_points"] >= 6 and scores["lr"] == 0.1
    monkeypatch.setattr(fasttext, "train_supervised", lambda **settings: diverging(**{**settings, "lr": 0.5}))
    with pytest.raises(StocksentError, match=r"fastText failed \(NaN\) at every grid point"):
        baseline.score_baseline("fasttext", parts, ("bearish", "bullish"))
