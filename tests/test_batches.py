import numpy as np

from stocksent.data.batches import bucket_batches, ordered_batches, pad_batch


def test_bucket_batches_cover_every_message_once_with_similar_lengths():
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 40, size=1000)
    batches = bucket_batches(lengths, 64, np.random.default_rng(1))
    assert np.array_equal(np.sort(np.concatenate(batches)), np.arange(1000))
    assert max(np.ptp(lengths[b]) for b in batches) <= 3
    assert [len(b) for b in batches].count(1000 % 64) == 1  # one short batch, kept


def test_bucket_batch_order_depends_on_the_generator_only():
    lengths = np.arange(500) % 17 + 1
    a = bucket_batches(lengths, 32, np.random.default_rng(5))
    b = bucket_batches(lengths, 32, np.random.default_rng(5))
    c = bucket_batches(lengths, 32, np.random.default_rng(6))
    assert all(np.array_equal(x, y) for x, y in zip(a, b))
    assert not all(np.array_equal(x, y) for x, y in zip(a, c))


def test_pad_batch_right_pads_to_longest_or_fixed_width():
    encoded = [np.array([5, 6, 7]), np.array([8]), np.array([9, 10])]
    tokens, lengths = pad_batch(encoded, np.array([0, 1]))
    assert tokens.tolist() == [[5, 6, 7], [8, 0, 0]] and lengths.tolist() == [3, 1]
    tokens, lengths = pad_batch(encoded, np.array([2]), pad_to=6)
    assert tokens.tolist() == [[9, 10, 0, 0, 0, 0]] and lengths.tolist() == [2]
    tokens, lengths = pad_batch(encoded, np.array([1, 0, 2]), pad_to=2)  # longer messages cut at the width
    assert tokens.tolist() == [[8, 0], [5, 6], [9, 10]] and lengths.tolist() == [1, 2, 2]


def test_ordered_batches_keep_the_last_partial_batch():
    assert [len(b) for b in ordered_batches(10, 4)] == [4, 4, 2]
