import json

import pytest

from conftest import TINY
from stocksent.cli import main

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def seeds_dir(tmp_path_factory, data_slice):
    out = tmp_path_factory.mktemp("report") / "seeds"
    assert main(["train", "--data", str(data_slice), "--out", str(out), *TINY, "--epochs", "1",
                 "--seeds", "1", "2"]) == 0
    return out


def test_report_scores_models_and_baselines_on_their_split(trained_model, seeds_dir, data_slice, tmp_path, capsys):
    out = tmp_path / "report"
    assert main(["report", str(trained_model), str(seeds_dir), "--out", str(out)]) == 0
    summary = json.loads((out / "report.json").read_text())
    single, seeds = summary
    # The LSTM is scored again from its saved files: the same figures as training reported.
    saved = json.loads((trained_model / "metrics.json").read_text())["test"]
    assert single["runs"][0]["lstm"]["test"]["accuracy"] == saved["accuracy"]
    assert single["runs"][0]["lstm"]["test"]["roc_auc"] == pytest.approx(saved["roc_auc"])
    # The baseline is the one `stocksent baseline` fits on the same split.
    capsys.readouterr()
    assert main(["baseline", "--data", str(data_slice), "--json"]) == 0
    baseline = json.loads(capsys.readouterr().out)
    assert single["runs"][0]["tfidf_logreg"]["test"]["accuracy"] == baseline["tfidf_logreg"]["test"]["accuracy"]
    assert single["runs"][0]["majority"]["test"]["accuracy"] == baseline["majority"]["test"]["accuracy"]
    # A --seeds directory is reported per seed, with mean and std over them.
    per_seed = [json.loads((seeds_dir / f"seed-{s}" / "metrics.json").read_text())["test"]["accuracy"] for s in (1, 2)]
    assert [r["lstm"]["test"]["accuracy"] for r in seeds["runs"]] == per_seed
    assert seeds["mean_std"]["lstm"]["accuracy"]["mean"] == pytest.approx(sum(per_seed) / 2)
    report = (out / "report.md").read_text()
    assert "| mean ± std |" in report and "plain split, seeds 1, 2" in report
    assert "| NBSVM | test |" in report and "| fastText | test |" in report
    assert seeds["mean_std"]["nbsvm"]["accuracy"]["mean"] > 0.5
    for prefix in ("1-", "2-"):
        for plot in ("learning-curves", "confusion", "roc", "reliability"):
            png = (out / f"{prefix}{plot}.png").read_bytes()
            assert png.startswith(PNG_MAGIC) and len(png) > 5000
            assert f"]({prefix}{plot}.png)" in report
    assert not list(out.glob(".*.tmp"))  # every file went in by rename


def test_report_scores_an_out_of_domain_file_for_the_model_and_each_baseline(trained_model, real_rows, tmp_path,
                                                                            capsys):
    from conftest import write_csv

    rows = real_rows[30000:30400]  # messages the slice's model never saw, as a stand-in market
    other = write_csv(tmp_path / "other.csv", rows, ["message", "sentiment"])
    out = tmp_path / "ood"
    assert main(["report", str(trained_model), "--ood", str(other), "--baselines", "tfidf,nbsvm",
                 "--out", str(out)]) == 0
    run = json.loads((out / "report.json").read_text())[0]["runs"][0]
    assert set(run) >= {"lstm", "tfidf_logreg", "nbsvm", "majority"} and "fasttext" not in run
    assert all(run[model]["ood"]["n"] == 400 for model in ("lstm", "tfidf_logreg", "nbsvm", "majority"))
    capsys.readouterr()
    assert main(["evaluate", str(trained_model), "--data", str(other), "--split", "all", "--json"]) == 0
    assert run["lstm"]["ood"]["roc_auc"] == pytest.approx(json.loads(capsys.readouterr().out)["roc_auc"])
    assert "| NBSVM | ood |" in (out / "report.md").read_text()


def test_report_names_the_split(data_slice, tmp_path, capsys):
    out = tmp_path / "grouped"
    assert main(["train", "--data", str(data_slice), "--out", str(out), *TINY, "--epochs", "1",
                 "--group-duplicates"]) == 0
    assert main(["report", str(out), "--json"]) == 0
    printed = capsys.readouterr().out
    assert json.loads(printed[printed.index("["):])[0]["split"] == "grouped"
    assert (out / "report" / "report.md").exists()


def test_report_mistakes_are_one_line_errors(trained_model, tmp_path, real_rows, capsys):
    from conftest import write_csv

    assert main(["report", str(tmp_path / "missing")]) == 1
    other = write_csv(tmp_path / "other.csv", real_rows[5000:8000], ["message", "sentiment"])
    assert main(["report", str(trained_model), "--data", str(other), "--out", str(tmp_path / "r")]) == 1
    err = [line for line in capsys.readouterr().err.splitlines() if not line.startswith("scoring ")]
    assert len(err) == 2 and all(line.startswith("stocksent: error:") for line in err)
    assert "not found" in err[0] and "sha256 differs" in err[1]


def test_report_draws_the_market_index_of_a_tagged_file_with_times(trained_model, real_rows, tmp_path):
    from conftest import write_csv

    rows = [{**r, "created_at": f"2022-0{1 + i % 3}-15T12:00:00Z", "ticker": "SPY"}
            for i, r in enumerate(real_rows[30000:30300])]
    stream = write_csv(tmp_path / "stream.csv", rows, ["created_at", "ticker", "message", "sentiment"])
    out = tmp_path / "with-index"
    assert main(["report", str(trained_model), "--baselines", "tfidf", "--index", str(stream),
                 "--index-ticker-column", "ticker", "--out", str(out)]) == 0
    text = (out / "report.md").read_text()
    assert "## Market index" in text and "![market index](index.png)" in text
    assert "3 rows, 1 tickers" in text and "In the 3 cells holding 30 tagged messages or more" in text
    assert (out / "index.png").read_bytes()[:4] == b"\x89PNG"
