"""model/widen.py: a wider model starts out computing what the trained one computes, in every
mode, and its copied features get different gradients (so the extra width gets used)."""

from __future__ import annotations

import pytest
import torch

from model import Config, OCSlotSSM
from model.widen import main as widen_main
from model.widen import widen

from .test_model import TINY


def trained_like(cfg: Config) -> OCSlotSSM:
    """A tiny model whose every parameter (LayerNorm gains and biases included) is perturbed
    from its initial value, so that no part of the widening is checked on ones and zeros."""
    torch.manual_seed(0)
    model = OCSlotSSM(cfg)
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.2 * torch.randn_like(p))
    return model.eval()


def video() -> torch.Tensor:
    return torch.rand(2, 7, 3, 32, 32, generator=torch.Generator().manual_seed(1))


OUTPUTS = ("masks", "log_depth", "rgb", "attention", "positions")


@pytest.mark.parametrize(
    "overrides",
    [{}, {"slot_carry": True}, {"predict_next": True, "mixer_heads": 2}, {"first_block_iters": 1}],
)
@pytest.mark.parametrize("factor", [2, 3])
def test_widened_model_computes_the_same(overrides, factor):
    model = trained_like(Config(**TINY.to_dict() | overrides))
    wide = widen(model, factor).eval()
    assert wide.config.dim == factor * model.config.dim
    assert wide.config.ssm_heads == factor * model.config.ssm_heads
    x = video()
    with torch.no_grad():
        a = model(x, predict_next=model.config.predict_next)
        b = wide(x, predict_next=model.config.predict_next)
    names = OUTPUTS + (("next_rgb", "next_log_depth") if model.config.predict_next else ())
    for name in names:
        torch.testing.assert_close(getattr(b, name), getattr(a, name), atol=1e-4, rtol=1e-4)
    # the slots themselves: each feature copied factor times
    torch.testing.assert_close(b.slots, a.slots.repeat_interleave(factor, -1), atol=1e-4, rtol=1e-4)


def test_widened_model_streams_like_it_runs_in_parallel():
    wide = widen(trained_like(Config(**TINY.to_dict() | {"slot_carry": True})), 2).eval()
    x = video()
    with torch.no_grad():
        whole = wide(x)
        cache = wide.alloc_cache(batch=2)
        frames = [wide(x[:, t : t + 1], cache=cache).masks for t in range(x.shape[1])]
    torch.testing.assert_close(torch.cat(frames, 1), whole.masks, atol=1e-4, rtol=1e-4)


def test_copies_of_a_feature_get_different_gradients():
    wide = widen(trained_like(TINY), 2).train()
    out = wide(video())
    (out.log_depth.pow(2).mean() + out.masks.std()).backward()
    for name in (
        "blocks.0.mlp.0.weight",
        "blocks.1.time_mixer.in_proj.weight",
        "encoder.mlp.1.weight",
    ):
        grad = dict(wide.named_parameters())[name].grad
        gap = (grad[0::2] - grad[1::2]).abs().max()  # rows 2k and 2k+1 are copies of row k
        assert gap > 1e-3 * grad.abs().max(), name


def test_refuses_other_time_mixers():
    with pytest.raises(ValueError, match="ssm time mixer"):
        widen(OCSlotSSM(Config(**TINY.to_dict() | {"time_mixer": "gru"})), 2)


def test_cli_writes_a_loadable_wider_model(tmp_path):
    trained_like(TINY).save_pretrained(tmp_path / "narrow")
    widen_main(["--weights", str(tmp_path / "narrow"), "--out", str(tmp_path / "wide")])
    wide = OCSlotSSM.from_pretrained(tmp_path / "wide")
    assert wide.config.dim == 2 * TINY.dim
    assert wide.config.decoder_hidden == TINY.decoder_hidden  # only the slots' width grows


def test_noise_sets_copies_apart_by_about_its_size():
    model = trained_like(TINY)
    exact, noisy = (
        widen(model, 2, noise=n).state_dict()["blocks.0.mlp.0.weight"] for n in (0, 0.1)
    )
    # what each unit reads from each original feature: the sum over that feature's copies,
    # which does not depend on the random shares
    read_exact, read_noisy = (w[:, 0::2] + w[:, 1::2] for w in (exact, noisy))
    added = (read_noisy - read_exact).std().item()
    assert added == pytest.approx(2**0.5 * 0.1 * exact.std().item(), rel=0.25)
    assert (read_noisy[0::2] - read_noisy[1::2]).norm().item() > 0.05 * read_noisy.norm().item()
    assert (read_exact[0::2] - read_exact[1::2]).norm().item() < 1e-6 * read_exact.norm().item()
