import numpy as np
import pytest

from stocksent.config import DataConfig, PreprocessConfig
from stocksent.data.corpus import load_corpus
from stocksent.data.dataset import find_data
from stocksent.data.split import split_indices
from stocksent.errors import StocksentError


def test_article_sizes_and_disjoint_cover():
    parts = split_indices(96966, seed=42)
    assert [len(parts[k]) for k in ("train", "val", "test")] == [77572, 9697, 9697]
    assert np.array_equal(np.sort(np.concatenate(list(parts.values()))), np.arange(96966))


def test_seeded_and_repeatable():
    a, b, c = (split_indices(1000, s) for s in (1, 1, 2))
    assert all(np.array_equal(a[k], b[k]) for k in a)
    assert not np.array_equal(a["test"], c["test"])


def test_group_duplicates_keeps_copies_together(real_rows, data_slice):
    corpus = load_corpus(data_slice, DataConfig(), PreprocessConfig())
    keys = [" ".join(t) for t in corpus.tokens]
    assert len(set(keys)) < len(keys)  # the slice has duplicate texts
    parts = corpus.split(DataConfig(group_duplicates=True))
    seen = [{keys[i] for i in parts[name]} for name in ("train", "val", "test")]
    assert not (seen[0] & seen[1] or seen[0] & seen[2] or seen[1] & seen[2])
    assert 0.75 < len(parts["train"]) / len(keys) < 0.85


def test_plain_split_leaks_duplicates_on_full_data():
    corpus = load_corpus(find_data(), DataConfig(), PreprocessConfig())
    keys = [" ".join(t) for t in corpus.tokens]
    parts = corpus.split(DataConfig())
    train = {keys[i] for i in parts["train"]}
    assert any(keys[i] in train for i in parts["test"])
    grouped = corpus.split(DataConfig(group_duplicates=True))
    train = {keys[i] for i in grouped["train"]}
    assert not any(keys[i] in train for i in grouped["test"])


def test_too_few_messages():
    with pytest.raises(StocksentError, match="too few messages"):
        split_indices(3, seed=1)


def _keys(real_rows, distinct: int, copies: tuple[int, ...]) -> list[str]:
    """Real messages, the k-th of them copies[k % len(copies)] times over, in a scattered order."""
    texts = [r["message"] for r in real_rows[:distinct]]
    keys = [text for k, text in enumerate(texts) for _ in range(copies[k % len(copies)])]
    return [keys[(i * 7919) % len(keys)] for i in range(len(keys))]


@pytest.mark.parametrize("copies", [(2,), (3,), (2, 3, 4, 5)])
def test_no_group_lands_in_two_splits_wherever_the_cuts_fall(real_rows, copies):
    # Every message has copies, and the cuts fall inside groups: each is kept whole or leaks.
    keys = _keys(real_rows, 401, copies)
    for seed in range(12):
        parts = split_indices(len(keys), seed, groups=keys)
        seen = {name: {keys[i] for i in part} for name, part in parts.items()}
        assert not seen["train"] & seen["val"] and not seen["train"] & seen["test"] and not seen["val"] & seen["test"]
        assert sorted(np.concatenate(list(parts.values())).tolist()) == list(range(len(keys)))
        assert abs(len(parts["train"]) - 0.8 * len(keys)) <= max(copies)


def test_grouped_split_of_distinct_messages_has_the_plain_split_s_sizes():
    for n, val, test in ((1000, 0.1, 0.1), (997, 0.15, 0.05), (50, 0.2, 0.1), (1000, 0.1, 0.0)):
        plain = split_indices(n, 3, val, test)
        grouped = split_indices(n, 3, val, test, groups=[str(i) for i in range(n)])
        assert {k: len(v) for k, v in grouped.items()} == {k: len(v) for k, v in plain.items()}, (n, val, test)


def test_split_messages_holds_out_validation_alone_when_asked(real_rows):
    from stocksent.data.split import split_messages
    from stocksent.text.preprocess import tokenize

    tokens = [tokenize(r["message"]) for r in real_rows[:1000]]
    parts = split_messages(tokens, DataConfig(group_duplicates=True), test_fraction=0)
    assert len(parts["test"]) == 0 and 0.05 < len(parts["val"]) / len(tokens) < 0.15
    with_test = split_messages(tokens, DataConfig(test_fraction=0.2, val_fraction=0.1))
    assert abs(len(with_test["test"]) - 200) <= 1 and abs(len(with_test["val"]) - 100) <= 1


def test_too_few_messages_names_every_empty_split():
    for args, empty in (((0, 1), "train/val/test"), ((1, 1), "train/val"), ((2, 1), "val"),
                        ((1, 1, 0.1, 0.0), "train")):  # a test fraction of 0 asks for no test split
        with pytest.raises(StocksentError, match=rf"^too few messages \({args[0]}\) to make a {empty} split$"):
            split_indices(*args)
