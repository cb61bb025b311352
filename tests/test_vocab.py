import pytest

from stocksent.errors import StocksentError
from stocksent.text.preprocess import tokenize
from stocksent.text.vocab import PAD, UNK, Vocab


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


def test_encode_decode_is_stable_on_any_text():
    from hypothesis import strategies as st

    from test_preprocess import _texts, run_property

    vocab = Vocab.build([tokenize("$SPY calls to the moon 🚀 @trader buy 12 $4.50 https://x.co"),
                         tokenize("puts puts bears 🐻 sell")], min_freq=1)

    def check(texts):
        for text in texts:
            tokens = tokenize(text)
            ids = vocab.encode(tokens)
            assert len(ids) == len(tokens) and all(1 <= i < len(vocab) for i in ids)
            decoded = vocab.decode(ids)
            # Known words come back as they were, unknown ones as <UNK>, and a second round trip changes nothing.
            assert decoded == [t if t in vocab.stoi else UNK for t in tokens]
            assert vocab.encode(decoded) == ids
        # Building from any text keeps padding at 0, unknown at 1, and survives a save and load.
        built = Vocab.build([tokenize(t) for t in texts])
        assert built.itos[:2] == [PAD, UNK] and Vocab.from_dict(built.to_dict()).itos == built.itos
    run_property(st.lists(_texts(), max_size=5), check, examples=1500)


def test_a_vocabulary_grown_by_new_text_keeps_every_id_and_adds_only_the_words_it_lacks():
    old = Vocab.build([["buy", "calls"], ["buy", "puts"]])
    new = old.extended([["buy", "the", "dip"], ["the", "dip"], ["once"]], min_freq=2)
    assert new.itos[:len(old)] == old.itos
    assert new.itos[len(old):] == ["dip", "the"]  # by frequency then text; "once" is under min_freq
