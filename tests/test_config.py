import dataclasses

import pytest

from stocksent.config import FIELDS, Config, DataConfig, ModelConfig, PretrainConfig, RunConfig, preset, setting
from stocksent.errors import StocksentError


def test_a_list_setting_is_copied_for_each_config():
    one, other = ModelConfig(), ModelConfig()
    one.lstm_sizes.append(8)
    assert other.lstm_sizes == [128, 64] and PretrainConfig().cutoffs == [2000, 10000]


def test_a_setting_carries_its_help_and_flag_and_changes_nothing_else():
    keep = {f.name: f.metadata for f in dataclasses.fields(DataConfig)}
    assert keep["seed"]["help"].startswith("seed of the split") and keep["seed"]["flag"] == ""
    assert keep["group_duplicates"]["negatable"] is False
    assert dataclasses.fields(ModelConfig)[0].metadata["flag"] is None  # vocab_size: from the vocabulary
    assert Config.from_dict(preset("tutorial").to_dict()) == preset("tutorial")
    assert setting(3, "three").default == 3


def test_pretraining_refuses_a_gradient_clip_that_is_not_positive():
    with pytest.raises(StocksentError, match="grad_clip must be positive"):
        PretrainConfig(grad_clip=0.0)


def test_the_runtime_settings_are_kept_apart_from_the_recipe():
    saved = preset("default").override("run", threads=2, device="cpu", init="models/lm").to_dict()
    assert saved["run"] == {"threads": 2, "device": "cpu", "bf16": True, "init": "models/lm"}
    assert not {"threads", "device", "bf16", "init"} & set(saved["train"])
    assert not {"threads", "device", "text_column"} & set(dataclasses.asdict(PretrainConfig()))
    assert all(FIELDS[name] == "run" for name in ("threads", "device", "bf16", "init"))


def test_a_version_1_config_with_its_runtime_settings_among_the_training_ones_reads_as_before():
    config = preset("default").override("run", threads=2, bf16=True, init="models/lm")
    raw = config.to_dict()
    run = raw.pop("run")
    version_1 = {**raw, "train": {**raw["train"], **run}}
    assert Config.from_dict(version_1) == config


def test_a_runtime_setting_of_the_wrong_kind_or_range_is_named():
    with pytest.raises(StocksentError, match="device must be auto, cpu or cuda"):
        RunConfig(device="tpu")
    with pytest.raises(StocksentError, match="threads must be 0"):
        RunConfig(threads=-1)


def test_the_finetune_preset_is_the_default_weighing_both_labels_alike_over_more_epochs():
    tuned, default = preset("finetune"), preset("default")
    assert tuned.model == default.model and tuned.preprocess == default.preprocess
    assert (tuned.train.balanced, tuned.train.epochs, tuned.train.patience) == (True, 50, 3)
    assert (tuned.train.schedule, tuned.train.stop_margin) == ("constant", 0.0)  # as docs/finetune.md measured it
    assert dataclasses.replace(tuned.train, balanced=False, epochs=4, patience=2, schedule="linear",
                               stop_margin=0.01) == default.train
