import pytest

from stocksent.errors import StocksentError
from stocksent.preprocess import tokenize
from stocksent.vocab import PAD, UNK, Vocab


def test_padding_zero_unknown_one_and_frequency_order(real_rows):
    messages = [tokenize(r["message"]) for r in real_rows[:2000]]
    vocab = Vocab.build(messages)
    assert vocab.itos[:3] == [PAD, UNK, "<TICKER>"]  # $SPY is in nearly every message
    assert vocab.encode(["<TICKER>", "never-seen-word"]) == [2, 1]


def test_min_freq_drops_rare_words():
    messages = [["buy", "buy", "sell"], ["buy", "hold"]]
    assert Vocab.build(messages, min_freq=2).itos == [PAD, UNK, "buy"]
    assert len(Vocab.build(messages, min_freq=1)) == 5


def test_only_training_words_are_known(real_rows):
    train = [tokenize(r["message"]) for r in real_rows[:1000]]
    test = [tokenize(r["message"]) for r in real_rows[1000:2000]]
    vocab = Vocab.build(train)
    unseen = {t for m in test for t in m} - {t for m in train for t in m}
    assert unseen and all(vocab.encode([t]) == [1] for t in unseen)


def test_round_trip_and_decode():
    vocab = Vocab.build([["a", "b", "b"]])
    again = Vocab.from_dict(vocab.to_dict())
    assert again.itos == vocab.itos
    assert again.decode([3, 2, 0, 0]) == ["a", "b"]


def test_rejects_a_file_that_is_not_a_vocabulary():
    with pytest.raises(StocksentError, match="not a stocksent vocabulary"):
        Vocab.from_dict({"tokens": ["a", "b"]})
