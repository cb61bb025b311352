import json

import pytest

from stocksent.errors import StocksentError
from stocksent.store import CONFIG, WEIGHTS, load_model


def test_directory_holds_readable_files(trained_model):
    names = {p.name for p in trained_model.iterdir()}
    assert {"config.json", "vocab.json", "model.safetensors", "metrics.json", "history.json"} <= names
    config = json.loads((trained_model / CONFIG).read_text())
    assert config["format_version"] == 1 and config["labels"] == ["bearish", "bullish"]
    assert config["model"]["lstm_sizes"] == [16, 8] and config["data"]["seed"] == 42
    assert not list(trained_model.rglob("*.pkl"))


def test_load_gives_config_vocab_and_weights(trained_model):
    config, vocab, state = load_model(trained_model)
    assert len(vocab) == config.model.vocab_size == state["embedding.weight"].shape[0]


@pytest.fixture
def copy_of(trained_model, tmp_path):
    import shutil

    shutil.copytree(trained_model, tmp_path / "m")
    return tmp_path / "m"


def test_truncated_weights_refused(copy_of):
    weights = copy_of / WEIGHTS
    weights.write_bytes(weights.read_bytes()[:1000])
    with pytest.raises(StocksentError, match="checksum does not match"):
        load_model(copy_of)


def test_newer_format_refused(copy_of):
    raw = json.loads((copy_of / CONFIG).read_text())
    raw["format_version"] = 99
    (copy_of / CONFIG).write_text(json.dumps(raw))
    with pytest.raises(StocksentError, match="format version 99"):
        load_model(copy_of)


def test_vocabulary_of_another_size_refused(copy_of):
    vocab = json.loads((copy_of / "vocab.json").read_text())
    vocab["tokens"].append("extra")
    (copy_of / "vocab.json").write_text(json.dumps(vocab))
    with pytest.raises(StocksentError, match="vocab.json has"):
        load_model(copy_of)


def test_not_a_model_directory(tmp_path):
    with pytest.raises(StocksentError, match="not a stocksent model directory"):
        load_model(tmp_path)
    with pytest.raises(StocksentError, match="not found"):
        load_model(tmp_path / "absent")
