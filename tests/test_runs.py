"""runs: the one way a training runs, tried through its own functions (test_cli covers `train`)."""
import dataclasses
import json

import numpy as np
import pytest

from stocksent.config import preset
from stocksent.data.corpus import load_corpus
from stocksent.errors import StocksentError
from stocksent.training.runs import (
    check_destination,
    file_source,
    memory_source,
    resumed_config,
    train_run,
    train_seeds,
)

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
