"""runs: the one way a training runs, tried through its own functions (test_cli covers `train`)."""
import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import write_csv
from stocksent import SentimentClassifier
from stocksent.config import preset
from stocksent.data.corpus import load_corpus
from stocksent.errors import StocksentError
from stocksent.evaluation.experiment import evaluate_split
from stocksent.scoring.calibration import CalibrationSet
from stocksent.scoring.ngrams import NgramModel
from stocksent.scoring.predictor import Predictor
from stocksent.training.pretrain import adopt, load_pretrained
from stocksent.training.runs import (
    check_destination,
    file_source,
    memory_source,
    resumed_config,
    train_file,
    train_run,
    train_seeds,
    trained_before,
)
from stocksent.training.train import checkpoint_dataset

SMALL = dict(embedding_dim=16, lstm_sizes=[16, 8], batch_size=64, epochs=2, threads=1)


def _config(**train):
    config = preset("default").override("model", embedding_dim=16, lstm_sizes=[16], members=1)
    config = config.override("preprocess", min_freq=1).override("train", batch_size=64, epochs=1, **train)
    return config.override("run", threads=1)


def test_a_run_in_memory_trains_the_networks_and_part_and_scores_validation(real_rows):
    rows = real_rows[:1500]
    texts, codes = [r["message"] for r in rows], np.array([r["sentiment"] == "bullish" for r in rows], dtype=np.int64)
    source = memory_source(texts, codes, np.array(["bearish", "bullish"]), None)
    done = train_run(_config(pretraining="none"), source, log=lambda line: None)
    assert done.metrics["dataset"] == {"messages": 1500, "classes": ["bearish", "bullish"], "train_size": 1350,
                                       "val_size": 150}
    assert "test" not in done.metrics and done.metrics["val"]["n"] == 150
    predictor = done.predictor()
    assert [type(part).__name__ for part in predictor.parts] == ["NgramModel", "CalibrationSet"]
    assert len(predictor.parts[1].proba) == 150 and predictor.logits(texts[:5]).shape == (5,)


def test_the_recipe_s_word_vectors_are_pretrained_first_in_memory_or_into_the_run_s_folder(data_slice, tmp_path):
    lines = []
    config = _config(pretraining="word2vec")
    done = train_run(config, file_source(data_slice), tmp_path / "m", log=lines.append)
    assert done.run.config.run.init == str(tmp_path / "m" / "pretrained")
    assert (tmp_path / "m" / "pretrained" / "model.safetensors").exists() and "test" in done.metrics
    assert any(line.startswith("pretraining (word2vec) on 2400 training messages") for line in lines)
    saved = tmp_path / "m" / "pretrained" / "config.json"
    raw = json.loads(saved.read_text())  # as format version 1 saved it, with where it ran among its settings
    saved.write_text(json.dumps({**raw, "format_version": 1,
                                 "pretrain": {**raw["pretrain"], "threads": 2, "device": "auto", "text_column": "t"}}))
    again = []
    train_run(config.override("run", threads=2), file_source(data_slice), tmp_path / "m", log=again.append)
    assert any("pretrained before on the same text and settings; reused" in line for line in again)


def test_untagged_text_and_a_pretrained_model_together_are_refused(data_slice, tmp_path):
    with pytest.raises(StocksentError, match="not both"):
        train_run(_config().override("run", init=str(tmp_path)), file_source(data_slice), untagged=[["more", "text"]])


def test_a_resumed_run_reads_the_file_it_started_on(data_slice, tmp_path):
    other = tmp_path / "other.csv"
    other.write_text("message,sentiment\n$SPY up,bullish\n$SPY down,bearish\n")
    source = file_source(other, {"sha256": "0" * 64, "source": str(data_slice)})
    with pytest.raises(StocksentError, match=f"not the file this run started on.*resume with --data {data_slice}"):
        source(_config())


def test_a_memory_source_refuses_messages_of_one_label_before_anything_trains():
    source = memory_source(["up", "up more", "higher"], np.zeros(3, dtype=np.int64), np.array(["a", "b"]), None)
    with pytest.raises(StocksentError, match="hold one label only"):
        source(_config())


def test_a_model_is_replaced_only_when_asked_and_a_resume_changes_only_what_may_change(data_slice, tmp_path):
    out = tmp_path / "m"
    config = _config(pretraining="none")
    train_run(config, file_source(data_slice), out, log=lambda line: None)
    with pytest.raises(StocksentError, match="already holds a model"):
        check_destination(out)
    check_destination(out, force=True)
    assert resumed_config(out, config.override("train", epochs=3), {"epochs"}).train.epochs == 3
    with pytest.raises(StocksentError, match="lr cannot change on --resume"):
        resumed_config(out, config.override("train", lr=0.1), {"lr"})
    assert resumed_config(out, config.override("run", threads=2, device="cpu"), {"threads", "device"}).run == \
        dataclasses.replace(config.run, threads=2, device="cpu")  # where it runs is no part of the recipe
    with pytest.raises(StocksentError, match="init cannot change on --resume"):
        resumed_config(out, config.override("run", init=str(tmp_path)), {"init"})
    with pytest.raises(StocksentError, match="the seeds name a seed more than once"):
        train_seeds(config, tmp_path / "s", [1, 1], data_slice)
    assert load_corpus(data_slice, config.data, config.preprocess).record["messages"] == 3000


def test_a_model_trained_before_with_the_same_recipe_on_the_same_file_is_found_again(data_slice, tmp_path):
    out, config = tmp_path / "m", _config(pretraining="word2vec")
    train_file(config, out, data_slice, log=lambda line: None)
    metrics = json.loads((out / "metrics.json").read_text())
    assert trained_before(out, config, data_slice) == metrics
    assert trained_before(out, config.override("run", threads=2), data_slice) == metrics  # where, not what
    assert trained_before(out, config.override("train", lr=0.01), data_slice) is None
    assert trained_before(out, config.override("data", seed=7), data_slice) is None
    other = tmp_path / "other.csv.gz"
    other.write_bytes(data_slice.read_bytes()[:-1] + b"\n")  # the same name of data, other bytes
    assert trained_before(out, config, other) is None
    assert trained_before(tmp_path / "none", config, data_slice) is None
    record = json.loads((out / "pretrained" / "metrics.json").read_text())
    (out / "pretrained" / "metrics.json").write_text(json.dumps({**record, "messages": record["messages"] + 500}))
    assert trained_before(out, config, data_slice) is None  # its vectors read untagged text besides
    (out / "pretrained" / "metrics.json").write_text(json.dumps(record))
    (out / "model.safetensors").unlink()
    assert trained_before(out, config, data_slice) is None


@pytest.fixture(scope="module")
def market(tmp_path_factory, stream_rows) -> dict[str, Path]:
    """A market's own tagged messages, as a user keeps them: A, AA and AACG's of the stream (every
    20th message) in a training file (to 2020), a validation file (2021) and a test file (2022)."""
    folder = tmp_path_factory.mktemp("market")
    tagged = [r for r in stream_rows if r["sentiment"] and r["ticker"] != "AAAU"]
    years = {"train": ("2018", "2019", "2020"), "val": ("2021",), "test": ("2022",)}
    return {name: write_csv(folder / f"{name}.csv", [r for r in tagged if r["created_at"][:4] in wanted],
                            ["created_at", "ticker", "message", "sentiment"]) for name, wanted in years.items()}


def _rows(path: Path) -> int:
    return len(load_corpus(path, preset("default").data, preset("default").preprocess).labels)


def _fingerprint(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir()) if p.is_file()}


def test_a_run_from_a_trained_classifier_grows_its_vocabulary_and_records_where_it_started(trained_model, market,
                                                                                          tmp_path):
    before = _fingerprint(trained_model)
    config = _config(pretraining="none", balanced=True).override("run", init=str(trained_model))
    metrics = train_file(config, tmp_path / "m", market["train"], val_data=market["val"],
                         test_data=market["test"], log=lambda line: None)
    source, tuned = (json.loads((folder / "vocab.json").read_text())["tokens"] for folder in (trained_model,
                                                                                            tmp_path / "m"))
    assert tuned[:len(source)] == source and len(tuned) > len(source)
    saved = json.loads((tmp_path / "m" / "config.json").read_text())
    assert saved["run"]["init"] == str(trained_model) and saved["train"]["balanced"]
    assert saved["model"]["lstm_sizes"] == [16, 8] and saved["model"]["members"] == 2  # the source's shape
    assert metrics["dataset"]["init"] == {"source": str(trained_model), "weights_sha256": json.loads(
        (trained_model / "config.json").read_text())["weights_sha256"]}
    sizes = {name: _rows(market[name]) for name in ("train", "val", "test")}
    assert {name: metrics["dataset"][f"{name}_size"] for name in sizes} == sizes
    assert metrics["dataset"]["test"]["source"] == str(market["test"].resolve())
    assert _fingerprint(trained_model) == before  # the source is read, never written
    source_part, tuned_part = (Predictor.load(folder).part(NgramModel) for folder in (trained_model, tmp_path / "m"))
    assert set(source_part.keys) <= set(tuned_part.keys)  # its n-gram part corrects the source's
    assert Predictor.load(tmp_path / "m").part(CalibrationSet).trained_prior == 0.5  # learnt with labels alike
    assert metrics["dataset"]["train_size"] == sizes["train"]  # given both splits, the file all trains
    assert metrics["test"]["n"] == sizes["test"]
    again = evaluate_split(SentimentClassifier.load(tmp_path / "m"), log=lambda line: None)  # `evaluate`: the file too
    assert again["n"] == sizes["test"] and again["accuracy"] == metrics["test"]["accuracy"]


def test_some_of_the_source_s_own_messages_can_be_mixed_in(trained_model, market, data_slice, tmp_path):
    config = _config(pretraining="none", source_mix=0.5).override("run", init=str(trained_model))
    metrics = train_file(config, tmp_path / "m", market["train"], val_data=market["val"], log=lambda line: None)
    mixed = metrics["dataset"]["source_mix"]
    own = _rows(market["train"]) - metrics["dataset"]["test_size"]  # the file's test share is seeded
    assert mixed == round(0.5 * own) and metrics["dataset"]["train_size"] == own + mixed
    moved = tmp_path / "moved"
    moved.mkdir()
    for file in trained_model.iterdir():
        if file.is_file():
            (moved / file.name).write_bytes(file.read_bytes())
    record = json.loads((moved / "metrics.json").read_text())
    record["dataset"]["source"] = str(tmp_path / "gone.csv")
    (moved / "metrics.json").write_text(json.dumps(record))
    with pytest.raises(StocksentError, match="source_mix needs the data it was trained on"):
        train_file(config.override("run", init=str(moved)), tmp_path / "n", market["train"], log=lambda line: None)


def test_fixed_splits_are_used_as_given_and_a_resume_reads_the_same_files(market, tmp_path):
    out, config = tmp_path / "m", _config(pretraining="none")
    metrics = train_file(config, out, market["train"], val_data=market["val"], log=lambda line: None)
    assert metrics["dataset"]["val_size"] == _rows(market["val"])
    assert metrics["dataset"]["train_size"] + metrics["dataset"]["test_size"] == _rows(market["train"])
    assert checkpoint_dataset(out)["val"]["sha256"] == hashlib.sha256(market["val"].read_bytes()).hexdigest()
    with pytest.raises(StocksentError, match=f"not the file this run started on.*--val-data {market['val']}"):
        train_file(config.override("train", epochs=2), out, market["train"], resume=True, named={"epochs"},
                   val_data=market["test"], log=lambda line: None)
    done = train_file(config.override("train", epochs=2), out, market["train"], resume=True, named={"epochs"},
                      log=lambda line: None)  # the validation file recorded is read again
    assert done["dataset"]["val"] == metrics["dataset"]["val"] and done["epochs_run"] == 2


def test_a_classifier_of_other_labels_is_refused_before_anything_trains(trained_model, real_rows):
    texts = [r["message"] for r in real_rows[:300]]
    labels = ["up" if r["sentiment"] == "bullish" else "down" for r in real_rows[:300]]
    with pytest.raises(StocksentError, match="tells 'bearish' from 'bullish', not 'down' from 'up'"):
        SentimentClassifier(init=str(trained_model), epochs=1, threads=1).fit(texts, labels)


def test_a_run_started_from_a_classifier_takes_its_shape_and_the_length_of_its_n_grams(trained_model):
    source = load_pretrained(trained_model)
    asked = _config().override("model", ngrams=2, lstm_sizes=[32], members=1)
    shaped = adopt(asked, source, str(trained_model))
    assert (shaped.model.lstm_sizes, shaped.model.members, shaped.model.ngrams) == ([16, 8], 2, 3)
    assert adopt(asked.override("train", ngram_from_source=False), source).model.ngrams == 2


def test_a_resume_refuses_another_source_other_split_files_and_a_source_it_would_overwrite(trained_model, market,
                                                                                         tmp_path):
    out, quiet = tmp_path / "m", (lambda line: None)
    config = _config(pretraining="none").override("run", init=str(trained_model))
    train_file(config, out, market["train"], log=quiet)
    more = config.override("train", epochs=2)
    with pytest.raises(StocksentError, match="this run started with --data; resume it with the same files"):
        train_file(more, out, market["train"], resume=True, named={"epochs"}, val_data=market["val"], log=quiet)
    state = out / "checkpoint" / "state.json"
    saved = json.loads(state.read_text())
    saved["dataset"]["init"]["weights_sha256"] = "0" * 64
    state.write_text(json.dumps(saved))
    with pytest.raises(StocksentError, match="is not the model this run started from"):
        train_file(more, out, market["train"], resume=True, named={"epochs"}, log=quiet)
    with pytest.raises(StocksentError, match="--init and --out both name"):
        train_file(config.override("run", init=str(out)), out, market["train"], log=quiet)


def test_fit_from_a_classifier_takes_labels_as_codes_or_in_another_case(trained_model, real_rows):
    rows = real_rows[:400]
    texts, bullish = [r["message"] for r in rows], [r["sentiment"] == "bullish" for r in rows]
    clf = SentimentClassifier(init=str(trained_model), epochs=1, threads=1).fit(texts, np.array(bullish, dtype=int))
    assert clf.classes_.tolist() == [0, 1] and clf.labels == ("bearish", "bullish")
    upper = ["BULLISH" if b else "BEARISH" for b in bullish]
    clf = SentimentClassifier(init=str(trained_model), epochs=1, threads=1, negative_label="BEARISH",
                              positive_label="BULLISH").fit(texts, upper)
    assert clf.labels == ("bearish", "bullish") and set(clf.predict(texts[:20])) <= {"BEARISH", "BULLISH"}
