import dataclasses

import pytest

from stocksent.config import Config, DataConfig, ModelConfig, PretrainConfig, preset, setting
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
