import contextlib
import dataclasses
import functools
import io
import json
import socket
import subprocess
import sys

import numpy as np
import pytest

from conftest import TINY, write_csv
from stocksent import SentimentClassifier
from stocksent.cli import SECTIONS, _pretrain_config, _train_config, build_parser, flag, main
from stocksent.config import PretrainConfig, preset
from stocksent.training.pretrain import pretrain_settings


@pytest.mark.parametrize("command", [[], ["data"], ["data", "fetch"], ["train"], ["evaluate"], ["predict"], ["report"],
                                     ["tune"], ["baseline"], ["export"], ["serve"], ["pretrain"], ["index"],
                                     ["calibrate"], ["adapt"]])
def test_every_help_has_an_example(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    assert "example:" in capsys.readouterr().out


# Values the config takes that the rule in _another cannot make up: one of a few words, or increasing.
VALID = {"embedding_init": "uniform", "weight_init": "glorot", "initial_state": "learned", "pooling": "mean",
         "ngrams": 1, "loss": "mse", "optimizer": "adadelta", "schedule": "constant", "device": "cpu",
         "pretraining": "next-word", "objective": "word2vec", "cutoffs": [1000, 5000]}


def _another(name, value):
    """A value of the field `name` that its config takes, other than `value`."""
    if name in VALID:
        return VALID[name]
    if isinstance(value, bool):
        return not value
    if isinstance(value, list):
        return value + value[-1:]
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value / 2 if value else 0.5
    return f"other{value}"


def _argv(item, value):
    if isinstance(value, bool):
        return [flag(item) if value else "--no-" + flag(item)[2:]]
    return [flag(item), *map(str, value if isinstance(value, list) else [value])]


@pytest.mark.parametrize("section, item", [(name, item) for name, kind in SECTIONS.items()
                                           for item in dataclasses.fields(kind)],
                         ids=lambda x: getattr(x, "name", x))
def test_every_config_field_has_a_train_flag_that_sets_it(section, item):
    assert item.metadata.get("help"), f"{item.name}: declare it with config.setting and its help"
    if flag(item) is None:
        assert item.name == "vocab_size"  # filled in from the vocabulary
        return
    base = preset("default")
    value = _another(item.name, getattr(getattr(base, section), item.name))
    assert value != getattr(getattr(base, section), item.name)
    config, named = _train_config(build_parser().parse_args(["train", *_argv(item, value)]))
    assert config == base.override(section, **{item.name: value}) and named == {item.name}


@pytest.mark.parametrize("item", [*dataclasses.fields(PretrainConfig),
                                  *[f for f in dataclasses.fields(preset("default").model)
                                    if f.name in ("embedding_dim", "lstm_sizes")]], ids=lambda f: f.name)
def test_every_pretrain_setting_and_the_shape_have_a_pretrain_flag(item):
    base = preset("default")
    settings = pretrain_settings(base, objective="next-word")
    shaping = item.name in ("embedding_dim", "lstm_sizes")
    value = _another(item.name, getattr(base.model if shaping else settings, item.name))
    args = build_parser().parse_args(["pretrain", "--text", "in.csv", "--out", "lm", *_argv(item, value)])
    shape, prep, got = _pretrain_config(args)
    assert prep == base.preprocess
    if shaping:
        assert shape == dataclasses.replace(base.model, **{item.name: value}) and got == settings
    else:
        assert getattr(got, item.name) == value and shape == base.model
        assert got == pretrain_settings(base, **{"objective": "next-word", item.name: value})


def test_the_flags_named_otherwise_than_their_field_and_the_one_way_switch(capsys):
    parse = build_parser().parse_args
    assert _train_config(parse(["train", "--no-emoji"]))[0].preprocess.keep_emoji is False
    assert _train_config(parse(["train", "--preset", "tutorial", "--emoji"]))[0].preprocess.keep_emoji is True
    assert _train_config(parse(["train"])) == (preset("default"), set())
    with pytest.raises(SystemExit):
        parse(["train", "--no-group-duplicates"])  # on only; the presets leave it off
    assert "--no-group-duplicates" in capsys.readouterr().err


def test_pretrain_setting_mistakes_are_one_line_errors(tmp_path, capsys):
    common = ["pretrain", "--text", str(tmp_path / "none.csv"), "--out", str(tmp_path / "lm")]
    _fails([*common, "--grad-clip", "0"], capsys, "grad_clip must be positive")
    _fails([*common, "--cutoffs", "10000", "2000"], capsys, "cutoffs must be increasing")
    _fails([*common, "--objective", "bag"], capsys, "objective must be next-word or word2vec")
    assert not (tmp_path / "lm").exists()


# train's flags before they were made from the config: a rename breaks scripts that use them.
TRAIN_FLAGS = """--embedding-dim --lstm-sizes --dropout --embedding-dropout --weight-init --forget-bias --initial-state
    --pooling --bigram-buckets --bigram-dim --members --ngrams --ngram-share --ngram-c --embedding-init --min-freq
    --max-tokens --loss --optimizer --lr --schedule --average-decay --weight-decay --warmup --layer-decay --rho --eps
    --batch-size --epochs --patience --grad-clip --threads --device --seed --init --pretraining --val-fraction
    --test-fraction --text-column --label-column --negative-label --positive-label --group-duplicates --emoji
    --no-emoji --sparse-embedding --no-sparse-embedding --bf16 --no-bf16 --bidirectional --no-bidirectional
    --unfreeze --no-unfreeze""".split()
PRETRAIN_FLAGS = """--embedding-dim --lstm-sizes --objective --epochs --lr --batch-size --held-out --seed --threads
    --device --text-column""".split()


def test_no_flag_of_train_or_pretrain_is_renamed_or_lost(capsys):
    for command, flags in (["train"], TRAIN_FLAGS), (["pretrain", "--text", "t", "--out", "o"], PRETRAIN_FLAGS):
        with pytest.raises(SystemExit):
            main([*command, "--help"])
        usage = capsys.readouterr().out
        assert [f for f in flags if f"[{f} " not in usage and f"[{f}]" not in usage and f"| {f}]" not in usage] == []


def test_console_script_runs():
    out = subprocess.run([sys.executable, "-m", "stocksent.cli", "--version"], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.startswith("stocksent ")


def test_evaluate_json_scores_every_test_message(trained_model, data_slice, capsys):
    assert main(["evaluate", str(trained_model), "--data", str(data_slice), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert {"accuracy", "f1", "roc_auc", "n", "majority_accuracy"} <= set(result)
    saved = json.loads((trained_model / "metrics.json").read_text())
    assert result["n"] == saved["dataset"]["test_size"] == 300  # 10% of 3,000; no batch dropped
    assert result["accuracy"] == pytest.approx(saved["test"]["accuracy"])


def test_evaluate_text_report(trained_model, data_slice, capsys):
    assert main(["evaluate", str(trained_model), "--data", str(data_slice), "--split", "val"]) == 0
    out = capsys.readouterr().out
    assert "val split: 300 messages" in out and "bullish" in out and "confusion" in out


def test_evaluate_all_scores_every_message_of_another_file(trained_model, real_rows, tmp_path, capsys):
    rows = real_rows[20000:20500]
    other = write_csv(tmp_path / "other.csv", rows, ["message", "sentiment"])
    assert main(["evaluate", str(trained_model), "--data", str(other), "--split", "all", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    clf = SentimentClassifier.load(trained_model)
    assert result["n"] == 500
    assert result["accuracy"] == clf.score([r["message"] for r in rows], [r["sentiment"] for r in rows])
    _fails(["evaluate", str(trained_model), "--split", "all"], capsys, "name it with --data")


def test_predict_arguments_text_and_jsonl(trained_model, capsys):
    assert main(["predict", str(trained_model), "$SPY to the moon 🚀", "puts printing"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2 and lines[0].split("\t")[0] in ("bullish", "bearish")
    assert main(["predict", str(trained_model), "$SPY calls", "--format", "jsonl"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert set(row) == {"text", "label", "prob_bullish"} and 0 <= row["prob_bullish"] <= 1
    assert main(["predict", str(trained_model), "--format", "jsonl", "$SPY calls", "--top", "2", "puts"]) == 0
    assert [json.loads(line)["text"] for line in capsys.readouterr().out.splitlines()] == ["$SPY calls", "puts"]


def test_predict_from_file_and_stdin(trained_model, tmp_path, real_rows, capsys, monkeypatch):
    path = write_csv(tmp_path / "in.csv", real_rows[:40], ["message", "sentiment"])
    assert main(["predict", str(trained_model), "--input", str(path), "--format", "jsonl"]) == 0
    from_file = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["text"] for r in from_file] == [r["message"] for r in real_rows[:40]]
    monkeypatch.setattr(sys, "stdin", io.StringIO("$SPY up\n$SPY down\n"))
    assert main(["predict", str(trained_model), "--format", "jsonl", "--batch-size", "1"]) == 0
    assert [json.loads(line)["text"] for line in capsys.readouterr().out.splitlines()] == ["$SPY up", "$SPY down"]


def test_predict_counts_messages_on_a_terminal_only_when_output_goes_elsewhere(
        trained_model, tmp_path, real_rows, capsys, monkeypatch):
    path = write_csv(tmp_path / "in.csv", real_rows[:40], ["message", "sentiment"])
    argv = ["predict", str(trained_model), "--input", str(path), "--batch-size", "16"]
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: False)
    assert main(argv) == 0
    out, err = capsys.readouterr()
    assert len(out.splitlines()) == 40 and "predict: " in err and " msg" in err and "predict" not in out
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True)  # the bar would write over the output
    assert main(argv) == 0
    assert capsys.readouterr().err == ""


def test_predict_bar_advances_by_each_chunk_as_its_lines_are_written(trained_model, tmp_path, real_rows,
                                                                   capsys, monkeypatch):
    import stocksent.cli as cli

    class Bar(contextlib.nullcontext):
        steps: list[tuple[int, int]] = []  # (messages counted, lines written by then)

        def __init__(self, **settings):
            super().__init__()

        def __enter__(self):
            return self

        def update(self, n):
            self.steps.append((n, len(sys.stdout.getvalue().splitlines())))

    monkeypatch.setattr(cli, "_message_bar", Bar)
    path = write_csv(tmp_path / "in.csv", real_rows[:40], ["message", "sentiment"])
    for workers in ("1", "2"):
        Bar.steps = []
        capsys.readouterr()
        assert main(["predict", str(trained_model), "--input", str(path), "--batch-size", "16",
                     "--workers", workers]) == 0
        assert Bar.steps == [(16, 16), (16, 32), (8, 40)]


def test_predict_on_worker_processes_gives_the_same_lines_in_order(trained_model, tmp_path, real_rows, capsys):
    path = write_csv(tmp_path / "in.csv", real_rows[:700], ["message", "sentiment"])
    common = ["predict", str(trained_model), "--input", str(path), "--format", "jsonl", "--batch-size", "64"]
    assert main(common) == 0
    alone = capsys.readouterr().out
    assert main([*common, "--workers", "2"]) == 0  # 11 chunks over 2 processes
    assert capsys.readouterr().out == alone
    assert [json.loads(line)["text"] for line in alone.splitlines()] == [r["message"] for r in real_rows[:700]]
    _fails([*common, "--workers", "0"], capsys, "--workers must be between 1 and")


def _fails(argv, capsys, match):
    assert main(argv) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("stocksent: error:") and match in err and "\n" not in err
    return err


def test_user_mistakes_are_one_line_errors(trained_model, tmp_path, capsys):
    _fails(["predict", str(tmp_path / "nope"), "hi"], capsys, "model directory not found")
    _fails(["predict", str(trained_model), "--input", str(tmp_path / "none.csv")], capsys, "not found")
    _fails(["train", "--data", str(tmp_path / "none.csv"), "--out", str(tmp_path / "m")], capsys, "not found")
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\nhi,up\n")
    _fails(["train", "--data", str(bad), "--out", str(tmp_path / "m")], capsys, "'message', 'sentiment'")
    _fails(["train", "--data", str(bad), "--out", str(tmp_path / "m"), "--text-column", "text",
            "--label-column", "label"], capsys, "unknown label")
    _fails(["train", "--out", str(tmp_path / "m"), "--lstm-sizes", "0"], capsys, "lstm_sizes")
    _fails(["train", "--out", str(tmp_path / "m"), "--resume"], capsys, "nothing to resume")
    _fails(["predict", str(trained_model), "--batch-size", "0", "hi"], capsys, "--batch-size")
    _fails(["train", "--out", str(tmp_path / "m"), "--seeds", "1", "1"], capsys, "more than once")
    _fails(["train", "--out", str(tmp_path / "m"), "--seeds", "1", "--seed", "2"], capsys, "not both")
    _fails(["train", "--out", str(tmp_path / "m"), "--embedding-dim", "100000000"], capsys, "embedding_dim")
    _fails(["train", "--out", str(tmp_path / "m"), "--ngrams", "4"], capsys, "ngrams must be between 0 (none) and 3")
    _fails(["train", "--out", str(tmp_path / "m"), "--ngram-share", "1"], capsys, "ngram_share must be in (0, 1)")
    _fails(["report", str(trained_model), "--out", str(bad / "sub")], capsys, "Not a directory")
    searched = tmp_path / "search"
    searched.mkdir()
    (searched / "trials.csv").write_text("kept")
    _fails(["tune", "--out", str(searched), "--trials", "1"], capsys, "--force")
    assert (searched / "trials.csv").read_text() == "kept"
    assert not (tmp_path / "m").exists()


def test_serve_mistakes_are_one_line_errors_before_anything_listens(trained_model, tmp_path, capsys):
    pytest.importorskip("uvicorn")
    _fails(["serve", str(tmp_path / "nope")], capsys, "model directory not found")
    _fails(["serve", str(trained_model), "--port", "70000"], capsys, "--port")
    _fails(["serve", str(trained_model), "--workers", "0"], capsys, "--workers")
    with socket.create_server(("127.0.0.1", 0)) as busy:
        port = busy.getsockname()[1]
        _fails(["serve", str(trained_model), "--port", str(port)], capsys, f"cannot listen on 127.0.0.1:{port}")


def test_running_out_of_memory_is_one_line_and_other_errors_are_not_hidden(monkeypatch, capsys):
    import stocksent.cli as cli

    def allocate(args):
        raise RuntimeError("[enforce fail at alloc_cpu.cpp:127] err == 0. DefaultCPUAllocator: can't "
                           "allocate memory: you tried to allocate 5107600000000 bytes.")

    monkeypatch.setattr(cli, "cmd_predict", allocate)
    assert "out of memory" in _fails(["predict", "m", "x"], capsys, "5107600000000 bytes")
    def bug(args):
        raise RuntimeError("a shape mismatch: a bug, to be seen whole")

    monkeypatch.setattr(cli, "cmd_predict", bug)
    with pytest.raises(RuntimeError, match="shape mismatch"):
        main(["predict", "m", "x"])


def test_an_existing_model_is_never_overwritten_by_accident(trained_model, data_slice, capsys):
    before = (trained_model / "model.safetensors").read_bytes()
    _fails(["train", "--data", str(data_slice), "--out", str(trained_model)], capsys, "already holds a model")
    assert (trained_model / "model.safetensors").read_bytes() == before


def test_no_usable_rows(tmp_path, capsys):
    path = tmp_path / "empty.csv"
    path.write_text("message,sentiment\n!!!,bullish\n...,bearish\n")
    _fails(["train", "--data", str(path), "--out", str(tmp_path / "m")], capsys, "no usable rows")


def test_one_label_only_is_refused_before_training(tmp_path, real_rows, capsys):
    bullish = [r for r in real_rows[:400] if r["sentiment"] == "bullish"]
    path = write_csv(tmp_path / "bullish.csv", bullish, ["message", "sentiment"])
    _fails(["train", "--data", str(path), "--out", str(tmp_path / "m")], capsys, "only 'bullish' messages")
    assert not (tmp_path / "m").exists()


def test_custom_columns_and_labels_train(tmp_path, real_rows, capsys):
    rows = [{"body": r["message"], "y": "pos" if r["sentiment"] == "bullish" else "neg"} for r in real_rows[:600]]
    path = write_csv(tmp_path / "other.csv", rows, ["body", "y"])
    argv = ["train", "--data", str(path), "--out", str(tmp_path / "m"), "--text-column", "body",
            "--label-column", "y", "--negative-label", "neg", "--positive-label", "pos",
            "--embedding-dim", "8", "--lstm-sizes", "8", "--epochs", "1", "--json"]
    assert main(argv) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["test"]["n"] == 60 and set(result["test"]["per_class"]) == {"neg", "pos"}
    assert main(["predict", str(tmp_path / "m"), "good", "--format", "jsonl"]) == 0
    assert json.loads(capsys.readouterr().out)["label"] in ("neg", "pos")


def test_evaluate_defaults_to_the_file_the_model_was_trained_on(trained_model, capsys):
    assert main(["evaluate", str(trained_model), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == 300  # the 3,000-row slice, not the full set


def test_train_reuse_reports_a_model_trained_before_and_trains_a_changed_recipe(data_slice, tmp_path, capsys):
    out = tmp_path / "m"
    command = ["train", "--data", str(data_slice), "--out", str(out), *TINY, "--epochs", "1", "--pretraining", "none",
               "--reuse"]
    assert main(command) == 0  # nothing there yet: it trains
    first = capsys.readouterr()
    saved = {p.name: p.stat().st_mtime_ns for p in out.iterdir()}
    assert main(command) == 0
    again = capsys.readouterr()
    assert again.err == f"{out}: trained before with this recipe on this data; reused (--force trains again)\n"
    assert again.out == first.out  # the same report
    assert {p.name: p.stat().st_mtime_ns for p in out.iterdir()} == saved  # nothing written
    assert main([*command, "--lr", "0.01"]) == 0  # another recipe: trained over the old one
    assert "reused" not in capsys.readouterr().err
    assert json.loads((out / "config.json").read_text())["train"]["lr"] == 0.01


def test_train_several_seeds_reports_mean_and_std(data_slice, tmp_path, capsys):
    out = tmp_path / "seeds"
    assert main(["train", "--data", str(data_slice), "--out", str(out), *TINY,
                 "--epochs", "1", "--seeds", "1", "2"]) == 0
    summary = json.loads((out / "seeds.json").read_text())
    per_seed = [json.loads((out / f"seed-{s}" / "metrics.json").read_text())["test"]["accuracy"] for s in (1, 2)]
    assert summary["accuracy"]["values"] == per_seed
    assert summary["accuracy"]["mean"] == pytest.approx(sum(per_seed) / 2)
    assert summary["accuracy"]["std"] == pytest.approx(abs(per_seed[0] - per_seed[1]) / 2 ** 0.5)
    assert "test accuracy  mean" in capsys.readouterr().out
    # A second run into the same folder is refused rather than replacing the seed models.
    assert main(["train", "--data", str(data_slice), "--out", str(out), *TINY, "--seeds", "2"]) == 1


def test_a_seeds_run_resumes_where_it_stopped(data_slice, tmp_path, capsys):
    out = tmp_path / "seeds"
    command = ["train", "--data", str(data_slice), "--out", str(out), *TINY, "--epochs", "1", "--seeds", "1", "2"]
    assert main(command) == 0
    finished = (out / "seed-1" / "model.safetensors").read_bytes()
    metrics = json.loads((out / "seed-2" / "metrics.json").read_text())
    (out / "seed-2" / "metrics.json").write_text(json.dumps({"val": metrics["val"]}))  # as if stopped in seed 2
    (out / "seeds.json").unlink()
    capsys.readouterr()
    assert main([*command, "3", "--epochs", "2", "--resume"]) == 0
    err = capsys.readouterr().err
    assert f"{out / 'seed-1'}: finished before" in err and "resuming after epoch 1 of 2" in err
    assert (out / "seed-1" / "model.safetensors").read_bytes() == finished  # not trained again
    assert [len(json.loads((out / f"seed-{s}" / "history.json").read_text())) for s in (1, 2, 3)] == [1, 2, 2]
    assert json.loads((out / "seeds.json").read_text())["seeds"] == [1, 2, 3]


def test_an_interrupted_train_says_whether_resume_has_anything_to_continue(data_slice, tmp_path, capsys, monkeypatch):
    import stocksent.cli as cli

    def interrupted(config, out, *args):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli, "train_file", interrupted)
    out = tmp_path / "m"
    assert main(["train", "--data", str(data_slice), "--out", str(out), *TINY]) == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        "stocksent: interrupted before anything was saved; run the same command again")
    (out / "pretrained").mkdir(parents=True)  # the word vectors were saved before the epochs began
    assert main(["train", "--data", str(data_slice), "--out", str(out), *TINY]) == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == (
        f"stocksent: interrupted; continue with the same command and --resume (--out {out})")


def test_parquet_in_for_train_evaluate_baseline_and_predict(parquet_slice, tmp_path, capsys):
    pd = pytest.importorskip("pandas")
    out = tmp_path / "pq"
    assert main(["train", "--data", str(parquet_slice), "--out", str(out), *TINY, "--epochs", "1"]) == 0
    capsys.readouterr()
    assert main(["evaluate", str(out), "--data", str(parquet_slice), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["n"] == 300
    assert main(["baseline", "--data", str(parquet_slice), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["split"]["test_size"] == 300
    texts = pd.read_parquet(parquet_slice).message.tolist()
    for name in ("scored.parquet", "scored.csv", "scored.jsonl"):
        target = tmp_path / name
        assert main(["predict", str(out), "--input", str(parquet_slice), "--output", str(target),
                     "--batch-size", "700"]) == 0
        read = {".parquet": pd.read_parquet, ".csv": functools.partial(pd.read_csv, keep_default_na=False),
                ".jsonl": functools.partial(pd.read_json, lines=True)}[target.suffix]
        scored = read(target)
        assert list(scored.columns)[-4:] == ["message", "sentiment", "label", "prob_bullish"]
        assert scored.message.tolist() == texts
        assert set(scored.label) <= {"bearish", "bullish"}
        assert ((scored.prob_bullish >= 0.5) == (scored.label == "bullish")).all()
    expected = SentimentClassifier.load(out).positive_proba(texts)
    np.testing.assert_array_equal(pd.read_parquet(tmp_path / "scored.parquet").prob_bullish, expected)


def test_predict_output_mistakes_are_one_line(trained_model, parquet_slice, tmp_path, capsys):
    _fails(["predict", str(trained_model), "--input", str(parquet_slice), "--output", str(tmp_path / "x.xlsx")],
           capsys, "x.xlsx")
    _fails(["predict", str(trained_model), "$SPY", "--output", str(tmp_path / "x.csv")], capsys,
           "--output takes --input FILE")
    _fails(["predict", str(trained_model), "--input", str(parquet_slice), "--output", str(parquet_slice)],
           capsys, "would overwrite the input")
    assert not (tmp_path / "x.xlsx").exists() and not (tmp_path / "x.csv").exists()


def test_fine_tuning_on_labels_the_source_does_not_know_is_one_line_and_writes_nothing(trained_model, real_rows,
                                                                                      tmp_path, capsys):
    before = {p.name: p.read_bytes() for p in trained_model.iterdir() if p.is_file()}
    rows = [dict(r) for r in real_rows[:300]]
    rows[7]["sentiment"] = "neutral"
    three = write_csv(tmp_path / "three.csv", rows, ["message", "sentiment"])
    renamed = write_csv(tmp_path / "renamed.csv", [{**r, "sentiment": "up" if r["sentiment"] == "bullish" else "down"}
                                                   for r in real_rows[:300]], ["message", "sentiment"])
    start = ["train", "--init", str(trained_model), "--epochs", "1", "--threads", "1", "--out"]
    _fails([*start, str(tmp_path / "a"), "--data", str(three)], capsys,
           f"unknown label value(s) 'neutral' in column 'sentiment'; expected 'bearish' or 'bullish': the two that "
           f"{trained_model} tells apart")
    _fails([*start, str(tmp_path / "b"), "--data", str(renamed)], capsys, "'down', 'up'")
    _fails([*start, str(tmp_path / "c"), "--data", str(renamed), "--negative-label", "down", "--positive-label", "up"],
           capsys, f"{trained_model} tells 'bearish' from 'bullish', not 'down' from 'up'")
    assert not any((tmp_path / name).exists() for name in "abc")
    assert {p.name: p.read_bytes() for p in trained_model.iterdir() if p.is_file()} == before
