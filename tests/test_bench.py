import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

from stocksent.nets.device import bf16_used

BENCH = Path(__file__).resolve().parents[1] / "bench"


def _run(script: str, *args: str) -> subprocess.CompletedProcess:
    run = subprocess.run([sys.executable, str(BENCH / script), *args], capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stderr
    return run


def test_padding_benchmark_prints_its_table(tmp_path):
    out = tmp_path / "result.json"
    run = _run("padding.py", "--limit", "128", "--threads", "1", "--json", str(out))
    assert "padded to 244" in run.stdout and "bucketed" in run.stdout and "speed-up of bucketing" in run.stdout
    assert out.exists()


def test_suite_measures_every_section_on_a_slice(tmp_path, data_slice):
    out = tmp_path / "suite.json"
    run = _run("suite.py", "--data", str(data_slice), "--padded-messages", "64", "--stream", "3000",
               "--threads", "1", "--json", str(out))
    result = json.loads(out.read_text())
    assert result["device"] == ("cuda:0" if torch.cuda.is_available() else "cpu")
    assert result["bf16"] == bf16_used(torch.device(result["device"]), True)  # the default preset's precision
    assert result["train"]["padded_messages"] == 64 and result["train"]["messages"] == 2400
    assert result["train"]["padded"]["padded_tokens"] == 64 * 244
    assert result["inference"]["messages"] == 5 * 300 and result["inference"]["messages_per_s"] > 0
    passes = result["inference"]["passes_messages_per_s"]
    assert len(passes) == 3 and result["inference"]["messages_per_s"] == sorted(passes)[1]
    streams = {k: v for k, v in result["memory"].items() if k.startswith("predict_")}
    assert sorted(v["messages"] for v in streams.values()) == [300, 3000]
    workers = result["memory"].pop("workers")
    assert workers["messages"] == 3000 and workers["messages_per_s"] > 0
    assert all(50 < v["peak_rss_mb"] < 4000 for v in result["memory"].values())
    assert "machine:" in run.stdout and "time to test accuracy 0.717" in run.stdout


def test_suite_without_the_memory_section_on_the_cpu(tmp_path, data_slice):
    out = tmp_path / "suite.json"
    run = _run("suite.py", "--data", str(data_slice), "--padded-messages", "64", "--threads", "1",
               "--device", "cpu", "--no-memory", "--json", str(out))
    result = json.loads(out.read_text())
    assert "memory" not in result and result["train"]["bucketed"]["messages_per_s"] > 0
    assert "device cpu" in run.stdout and "peak RSS" not in run.stdout
    assert result["bf16"] == bf16_used(torch.device("cpu"), True)  # the default's: bfloat16 where the CPU has it


def test_fewer_labels_curve_on_a_slice(tmp_path, data_slice):
    out, png = tmp_path / "curve.json", tmp_path / "curve.png"
    args = ["--data", str(data_slice), "--sizes", "300", "1000", "--seeds", "1", "--recipes", "scratch",
            "scratch+self", "--baselines", "tfidf", "--out", str(out)]
    run = _run("fewer_labels.py", *args, "--plot", str(png))
    results = json.loads(out.read_text())
    assert sorted(results) == sorted(f"{m}|{n}|1" for m in ("scratch", "scratch+self", "tfidf") for n in (300, 1000))
    assert all(0.3 < row["accuracy"] < 1 for row in results.values())
    selfed = results["scratch+self|300|1"]
    assert 0 <= selfed["pseudo_labelled"] <= 2400 - 300  # guesses only for the untagged rest of the training part
    assert selfed["pseudo_labelled"] == 0 or 0.0 <= selfed["pseudo_accuracy"] <= 1.0
    assert "| LSTM, no pretraining | 0." in run.stdout and png.stat().st_size > 10_000
    again = _run("fewer_labels.py", *args)  # everything is there already: nothing is trained again
    assert "|300|1:" not in again.stdout


def test_blend_benchmark_scores_each_half_and_the_blend_as_the_model_scores(trained_model, data_slice):
    from stocksent import SentimentClassifier

    rows = [line.split(" | ") for line in _run("blend.py", str(trained_model)).stdout.splitlines()[2:]]
    assert [row[1] for row in rows] == ["networks", "n-gram part", "blend"]
    # The blend's accuracy is the model's own on its test split, as metrics.json records it.
    recorded = SentimentClassifier.load(trained_model).metrics["test"]["accuracy"]
    assert abs(float(rows[2][2]) - recorded) <= 5e-5


def test_adapt_ngrams_benchmark_scores_the_model_before_and_after_stocksent_adapt(trained_model, real_rows, tmp_path):
    from conftest import write_csv
    from stocksent import SentimentClassifier
    from stocksent.evaluation.experiment import adapt_to

    market = write_csv(tmp_path / "market.csv", real_rows[3000:4000], ["message", "sentiment"])
    run = _run("adapt_ngrams.py", str(trained_model), "--data", str(market), "--thresholds", "0.5", "0.7",
               "--steps", "both", "priors", "--held-out", "0.3")
    rows = [line.rstrip(" |").split(" | ") for line in run.stdout.splitlines()[2:]]
    assert [row[1:3] for row in rows] == [["both", "0.5"], ["both", "0.7"], ["priors", ""]]
    assert int(rows[0][4]) == 700 >= int(rows[1][4])  # p >= 0.5 or <= 0.5 keeps every guess it reads
    order = np.random.default_rng(0).permutation(1000)
    read, held = np.sort(order[300:]), np.sort(order[:300])
    texts = [r["message"] for r in real_rows[3000:4000]]
    labels = np.array([r["sentiment"] for r in real_rows[3000:4000]])
    clf = SentimentClassifier.load(trained_model)
    scored = ([texts[i] for i in held], labels[held])
    assert abs(float(rows[0][6]) - clf.evaluate(*scored)["roc_auc"]) <= 5e-5  # before adapting
    metrics = adapt_to(clf, [texts[i] for i in read], threshold=0.5, log=lambda line: None)
    assert abs(float(rows[0][7]) - clf.evaluate(*scored)["roc_auc"]) <= 5e-5  # as adapt leaves it
    assert abs(float(rows[0][9]) - metrics["test"]["accuracy"]) <= 5e-5


def test_neighbours_counts_the_nearest_words_of_each_leaning_word(data_slice, tmp_path):
    from stocksent.cli import main

    vectors = tmp_path / "w2v"
    assert main(["pretrain", "--text", str(data_slice), "--out", str(vectors), "--objective", "word2vec",
                 "--epochs", "1", "--threads", "1"]) == 0
    lines = _run("neighbours.py", str(vectors), "--data", str(data_slice), "--min-messages", "10",
                 "--words", "calls").stdout.splitlines()
    frequent, leaning = (int(s) for s in re.match(r"(\d+) words in .* messages, (\d+) leaning", lines[0]).groups())
    same, other, neither = (int(s) for s in re.search(r"(\d+) lean the same way, (\d+) the other way, (\d+) neither",
                                                          lines[1]).groups())
    assert 0 < leaning < frequent
    assert same + other + neither == 10 * leaning  # each leaning word's ten nearest, itself left out
    word, nearest = lines[2].split(":")
    assert word.split()[0] == "calls" and float(word.split()[1]) > 0  # bullish on $SPY in 2017
    assert "calls" not in nearest.replace(",", " ").split()  # a word is not its own neighbour


def test_every_mutant_names_source_text_found_once_in_its_module():
    sys.path.insert(0, str(BENCH))
    try:
        import mutants
    finally:
        sys.path.remove(str(BENCH))
    src = BENCH.parent / "src"
    counts = {m.description: (src / (m.module.replace(".", "/") + ".py")).read_text(encoding="utf-8").count(m.original)
              for m in mutants.MUTANTS}
    assert {description: n for description, n in counts.items() if n != 1} == {}


def test_train_time_reads_each_phase_off_the_second_its_log_line_arrived():
    sys.path.insert(0, str(BENCH))
    try:
        import train_time
    finally:
        sys.path.remove(str(BENCH))
    lines = [(2.0, "pretraining (word2vec) on 77572 training messages"), (2.1, "pretraining on 75167 messages (...)"),
             (3.0, "epoch   1/3  held-out loss 2.4690  (1 s)"),
             (5.0, "/d/spy.csv: 96966 messages (1 empty ...); train 77572, val 9697, test 9697; vocabulary 12610"),
             (9.0, "epoch   1/4  loss 0.55  train_acc 0.71  val_loss 0.50  val_acc 0.75 *"),
             (13.0, "epoch   2/4  loss 0.46  train_acc 0.78  val_loss 0.47  val_acc 0.77 *"),
             (15.5, "n-gram part: 163156 1-3 grams in 3 s; ..."), (16.0, "model saved to /m")]
    assert train_time.phases(17.0, lines) == {"start-up and data": 2.0, "word vectors": 3.0, "epochs": 8.0,
                                              "n-gram part": 2.5, "scoring and saving": 1.5}


def test_ngram_solver_benchmark_sets_both_solvers_on_one_loss(data_slice):
    run = _run("ngram_solver.py", "--data", str(data_slice), "--rounds", "1")
    rows = [line for line in run.stdout.splitlines() if line.startswith("L-BFGS")]
    assert [row.split()[-3] for row in rows] == ["50", "50", "100", "300"]  # iterations of each
    above = [float(row.split()[-1]) for row in rows]  # each loss above the lowest: one loss for all
    assert above[3] == 0.0 and min(above) >= 0.0 and above[1] >= above[2]
    assert "the whole fit, as train runs it" in run.stdout
