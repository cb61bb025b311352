import json

import pytest

from stocksent.data.store import CONFIG, WEIGHTS, load_model, split_prefix
from stocksent.errors import StocksentError
from stocksent.scoring.calibration import CalibrationSet
from stocksent.scoring.ngrams import NgramModel


def test_directory_holds_readable_files(trained_model):
    names = {p.name for p in trained_model.iterdir()}
    assert {"config.json", "vocab.json", "model.safetensors", "metrics.json", "history.json"} <= names
    config = json.loads((trained_model / CONFIG).read_text())
    assert config["format_version"] == 2 and config["labels"] == ["bearish", "bullish"]
    assert config["model"]["lstm_sizes"] == [16, 8] and config["data"]["seed"] == 42
    assert not list(trained_model.rglob("*.pkl"))


def test_load_gives_config_vocab_and_weights(trained_model):
    config, vocab, state = load_model(trained_model)
    rest, part = split_prefix(state, NgramModel.prefix)
    network, calibration = split_prefix(rest, CalibrationSet.prefix)
    # The default is an ensemble of two networks, each member's tensors under members.K, an n-gram
    # part, and the calibration set: how the two score the validation split.
    assert config.model.members == 2 and {k.split(".")[1] for k in network} == {"0", "1"}
    assert sorted(part) == ["ngrams.bias", "ngrams.keys", "ngrams.weights"]
    assert sorted(calibration) == ["calibration.labels", "calibration.proba", "calibration.trained_prior"]
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


def test_a_model_saved_in_format_version_1_loads_as_it_was_saved(trained_model, copy_of):
    raw = json.loads((copy_of / CONFIG).read_text())
    run = raw.pop("run")
    raw["format_version"], raw["train"] = 1, {**raw["train"], **run}  # where version 1 kept them
    (copy_of / CONFIG).write_text(json.dumps(raw))
    (config, vocab, state), (config_now, vocab_now, state_now) = load_model(copy_of), load_model(trained_model)
    assert config == config_now and vocab.itos == vocab_now.itos
    assert all(state[name].equal(state_now[name]) for name in state_now) and state.keys() == state_now.keys()


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
    from stocksent.data.store import PREVIOUS_WEIGHTS, save_model

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

    from stocksent.data.store import PREVIOUS_WEIGHTS, save_model

    config, vocab, state = load_model(copy_of)
    (copy_of / PREVIOUS_WEIGHTS).write_bytes((copy_of / WEIGHTS).read_bytes())
    (copy_of / WEIGHTS).write_bytes(save({k: v + 1 for k, v in state.items()}))  # first crash
    # The next save must keep the weights config.json names (now the previous file), not the
    # orphan in model.safetensors; a crash after its weights land then still loads the original.
    import stocksent.data.store as store

    real = store.write_json
    store.write_json = lambda *a, **k: (_ for _ in ()).throw(KeyboardInterrupt)  # die before config.json
    try:
        with pytest.raises(KeyboardInterrupt):
            save_model(copy_of, config, vocab, {k: v + 2 for k, v in state.items()}, {})
    finally:
        store.write_json = real
    loaded = load_model(copy_of)[2]
    assert all(torch_equal(loaded[k], state[k]) for k in state)


def test_a_file_is_fsynced_before_its_rename_over_the_old_one_and_its_folder_after(tmp_path, monkeypatch):
    import os
    import stat

    from stocksent.data.store import write_bytes

    events, fsync, replace = [], os.fsync, os.replace

    def spied_fsync(fd):
        found = os.fstat(fd)
        events.append(("fsync", found.st_ino, stat.S_ISDIR(found.st_mode)))
        fsync(fd)

    def spied_replace(src, dst):
        events.append(("replace", os.stat(src).st_ino, str(dst)))
        replace(src, dst)

    monkeypatch.setattr(os, "fsync", spied_fsync)
    monkeypatch.setattr(os, "replace", spied_replace)
    dest = tmp_path / "model.safetensors"
    dest.write_bytes(b"the previous weights")
    write_bytes(dest, b"the new weights")
    assert dest.read_bytes() == b"the new weights"
    written, folder = dest.stat().st_ino, tmp_path.stat().st_ino
    renamed = events.index(("replace", written, str(dest)))
    assert ("fsync", written, False) in events[:renamed]  # its bytes on disk before its name points at them
    assert ("fsync", folder, True) in events[renamed + 1:]  # and the new name itself after


def test_saved_files_get_the_usual_mode_not_the_temporary_file_s(tmp_path):
    import os
    import stat

    from stocksent.data.store import write_json

    umask = os.umask(0o022)
    os.umask(umask)
    for name in ("fresh.json", "replaced.json"):
        (tmp_path / "replaced.json").write_text("{}")
        write_json(tmp_path / name, {"a": 1})
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o666 & ~umask
        assert json.loads((tmp_path / name).read_text()) == {"a": 1}


def test_a_save_that_dies_before_config_json_leaves_the_model_it_was_replacing(copy_of, monkeypatch):
    import torch

    from stocksent.data import store

    config, vocab, state = load_model(copy_of)
    newer = {k: v + 1 for k, v in state.items()}
    write_json = store.write_json

    def dies_at_config(dest, obj):
        if dest.name == CONFIG:
            raise KeyboardInterrupt
        write_json(dest, obj)

    monkeypatch.setattr(store, "write_json", dies_at_config)
    with pytest.raises(KeyboardInterrupt):
        store.save_model(copy_of, config, vocab, newer, {})
    assert (copy_of / store.PREVIOUS_WEIGHTS).exists()  # the weights config.json still names
    loaded = load_model(copy_of)[2]
    assert all(torch.equal(loaded[k], state[k]) for k in state)
    monkeypatch.setattr(store, "write_json", write_json)
    store.save_model(copy_of, config, vocab, newer, {})
    loaded = load_model(copy_of)[2]
    assert all(torch.equal(loaded[k], newer[k]) for k in state) and not (copy_of / store.PREVIOUS_WEIGHTS).exists()


@pytest.mark.parametrize("key, message", [("weights_sha256", "checksum does not match config.json"),
                                          ("format_version", "model format version None is not supported")],
                         ids=["no-checksum", "no-format-version"])
def test_a_config_without_its_checksum_or_format_version_is_refused(copy_of, key, message):
    raw = json.loads((copy_of / CONFIG).read_text())
    (copy_of / CONFIG).write_text(json.dumps({k: v for k, v in raw.items() if k != key}))
    with pytest.raises(StocksentError, match=message):
        load_model(copy_of)


def test_a_missing_or_damaged_file_is_named_even_when_its_path_holds_braces(tmp_path):
    from stocksent.data.store import read_weights

    folder = tmp_path / "{seed}"
    folder.mkdir()
    with pytest.raises(StocksentError, match="no model.safetensors; the model was not saved completely"):
        read_weights(folder / "model.safetensors", "0" * 64)
    (folder / "model.safetensors").write_bytes(b"x")
    with pytest.raises(StocksentError, match="checksum does not match config.json"):
        read_weights(folder / "model.safetensors", "0" * 64)
