import json

from stocksent.cli import main


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
