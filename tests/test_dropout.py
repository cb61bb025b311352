import pytest
import torch

from stocksent.nets.dropout import Dropout, keep_mask


@pytest.mark.parametrize("keep", [0.5, 0.7, 0.9])
def test_mask_keeps_the_asked_share_in_every_lane(keep):
    torch.manual_seed(0)
    mask, scale = keep_mask((1000, 400), keep)
    assert mask.shape == (1000, 400) and mask.dtype == torch.bool
    # Each 64-bit draw feeds four units in a row; a biased 16-bit lane would show in one column.
    lanes = mask.view(-1, 4).float().mean(dim=0)
    assert torch.allclose(lanes, torch.full((4,), keep), atol=0.005)
    assert scale == pytest.approx(1 / keep, rel=1e-4)


def test_odd_sizes_and_extremes():
    mask, _ = keep_mask((3, 5, 7), 0.5)
    assert mask.shape == (3, 5, 7)
    assert keep_mask((10_000,), 1.0)[0].all()
    rare, scale = keep_mask((10_000,), 1e-9)
    assert rare.float().mean() < 0.01 and scale == 65536  # a cut of 1, never 0


def test_output_keeps_the_expectation_and_gradient_follows_the_mask():
    torch.manual_seed(1)
    layer = Dropout(0.3).train()
    x = torch.randn(200, 50, 96, requires_grad=True)
    y = layer(x)
    dropped = y == 0
    assert 0.28 < dropped.float().mean() < 0.32
    assert torch.allclose(y[~dropped], x[~dropped] / 0.7, rtol=1e-3)
    assert float(layer(torch.ones(1000, 1000)).mean()) == pytest.approx(1.0, abs=0.005)
    y.sum().backward()
    assert torch.equal(x.grad == 0, dropped)


def test_same_seed_same_mask_and_eval_is_identity():
    layer = Dropout(0.5).train()
    x = torch.ones(64, 32)
    torch.manual_seed(7)
    first = layer(x)
    torch.manual_seed(7)
    assert torch.equal(layer(x), first)
    assert torch.equal(layer.eval()(x), x)
    assert torch.equal(Dropout(0.0).train()(x), x)
