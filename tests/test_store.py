import json

import pytest

from stocksent.errors import StocksentError
from stocksent.ngrams import NgramModel
from stocksent.store import CONFIG, WEIGHTS, load_model, split_prefix


def test_directory_holds_readable_files(trained_model):
    names = {p.name for p in trained_model.iterdir()}
    assert {"config.json", "vocab.json", "model.safetensors", "metrics.json", "history.json"} <= names
    config = json.loads((trained_model / CONFIG).read_text())
    assert config["format_version"] == 1 and config["labels"] == ["bearish", "bullish"]
    assert config["model"]["lstm_sizes"] == [16, 8] and config["data"]["seed"] == 42
    assert not list(trained_model.rglob("*.pkl"))


def test_load_gives_config_vocab_and_weights(trained_model):
    config, vocab, state = load_model(trained_model)
    network, part = split_prefix(state, NgramModel.prefix)
    # The default is an ensemble of two networks, each member's tensors under members.K, and an n-gram part.
    assert config.model.members == 2 and {k.split(".")[1] for k in network} == {"0", "1"}
    assert sorted(part) == ["ngrams.bias", "ngrams.keys", "ngrams.weights"]
    assert len(vocab) == config.model.vocab_size == state["members.1.embedding.weight"].shape[0]


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


def _forge(folder, weights: bytes):
    """Put other weights in place and make config.json vouch for them, so only the shape check is left."""
    import hashlib

    (folder / WEIGHTS).write_bytes(weights)
    raw = json.loads((folder / CONFIG).read_text())
    raw["weights_sha256"] = hashlib.sha256(weights).hexdigest()
    (folder / CONFIG).write_text(json.dumps(raw))


def test_corrupted_byte_refused(copy_of):
    data = bytearray((copy_of / WEIGHTS).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (copy_of / WEIGHTS).write_bytes(bytes(data))
    with pytest.raises(StocksentError, match="checksum does not match"):
        load_model(copy_of)


def test_weights_of_another_vocabulary_size_are_one_clear_error(copy_of, capsys):
    import torch
    from safetensors.torch import save

    from stocksent import SentimentClassifier
    from stocksent.cli import main

    state = load_model(copy_of)[2]
    table = "members.0.embedding.weight"
    state[table] = torch.zeros(state[table].shape[0] + 5, state[table].shape[1])
    _forge(copy_of, save(state))
    with pytest.raises(StocksentError, match="do not fit the model.*members.0.embedding.weight"):
        SentimentClassifier.load(copy_of)
    assert main(["predict", str(copy_of), "x"]) == 1 and main(["export", str(copy_of), "--onnx"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and all(line.startswith("stocksent: error:") for line in err)


def test_a_crash_between_weights_and_config_loads_the_previous_model(copy_of):
    from stocksent.store import PREVIOUS_WEIGHTS, save_model

    config, vocab, state = load_model(copy_of)
    (copy_of / PREVIOUS_WEIGHTS).write_bytes((copy_of / WEIGHTS).read_bytes())  # what save_model keeps
    newer = {k: v + 1 for k, v in state.items()}
    from safetensors.torch import save

    (copy_of / WEIGHTS).write_bytes(save(newer))  # the new weights landed, config.json did not
    loaded = load_model(copy_of)[2]
    assert all(torch_equal(loaded[k], state[k]) for k in state)
    save_model(copy_of, config, vocab, newer, {})  # a completed save loads the new ones and tidies up
    assert all(torch_equal(load_model(copy_of)[2][k], newer[k]) for k in state)
    assert not (copy_of / PREVIOUS_WEIGHTS).exists()


def torch_equal(a, b):
    import torch

    return torch.equal(a, b)


def test_a_second_crash_in_the_same_place_still_leaves_a_model(copy_of):
    from safetensors.torch import save

    from stocksent.store import PREVIOUS_WEIGHTS, save_model

    config, vocab, state = load_model(copy_of)
    (copy_of / PREVIOUS_WEIGHTS).write_bytes((copy_of / WEIGHTS).read_bytes())
    (copy_of / WEIGHTS).write_bytes(save({k: v + 1 for k, v in state.items()}))  # first crash
    # The next save must keep the weights config.json names (now the previous file), not the
    # orphan in model.safetensors; a crash after its weights land then still loads the original.
    import stocksent.store as store

    real = store.write_json
    store.write_json = lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt)  # die before config.json
    try:
        with pytest.raises(KeyboardInterrupt):
            save_model(copy_of, config, vocab, {k: v + 2 for k, v in state.items()}, {})
    finally:
        store.write_json = real
    loaded = load_model(copy_of)[2]
    assert all(torch_equal(loaded[k], state[k]) for k in state)
