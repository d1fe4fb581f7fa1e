"""Invariants of OC-SlotSSM: modes agree, outputs are well-formed and deterministic, bad
input is refused clearly, weights round-trip strictly."""

from __future__ import annotations

import json

import pytest
import torch

import model.decoder as decoder_module
import model.ssm as ssm_module
from model import Config, OCSlotSSM, SlotSegmenter
from model.slot_encoder import InvertedAttention
from model.ssm import SelectiveSSM

TINY = Config(
    image_size=32,
    dim=32,
    encoder_channels=16,
    num_slots=4,
    decoder_hidden=32,
    headdim=16,
)


def rel_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return ((a - b).abs().max() / b.abs().max().clamp_min(1e-12)).item()


def clear_lead(scores: torch.Tensor, margin: float = 1e-5) -> torch.Tensor:
    """Where the best of scores (over dim 1) leads the second by more than margin: an argmax
    there cannot be flipped by float rounding, one at a near-tie can."""
    top2 = scores.topk(2, dim=1).values
    return top2[:, 0] - top2[:, 1] > margin


@pytest.fixture(scope="module")
def model() -> OCSlotSSM:
    torch.manual_seed(0)
    return OCSlotSSM(TINY).eval()


@pytest.fixture(scope="module")
def video() -> torch.Tensor:
    return torch.rand(2, 11, 3, 32, 32, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("T", [13, 70])  # one chunk of 13; chunks of 32, the last padded
def test_ssd_scan_matches_recurrence(T):
    torch.manual_seed(0)
    ssm = SelectiveSSM(dim=16, d_state=8, headdim=8, expand=2, d_conv=4)
    u = torch.randn(3, T, 16)
    y_scan, s_scan = ssm(u)
    state, ys = ssm.alloc(3), []
    for t in range(T):
        y, state = ssm.step(u[:, t : t + 1], state)
        ys.append(y)
    assert rel_err(torch.cat(ys, 1), y_scan) < 1e-4
    assert rel_err(state.ssm, s_scan.ssm) < 1e-4
    assert rel_err(state.conv, s_scan.conv) < 1e-5


@pytest.mark.parametrize("chunk", [1, 4, 7, 32])
@pytest.mark.parametrize("matmul_between_chunks", [True, False])
def test_ssd_is_the_recurrence_for_any_chunk(chunk, matmul_between_chunks, monkeypatch):
    """The chunk length and the way states pass between chunks (one matmul, or a loop over
    chunks) are speed settings: outputs, final state and gradients are the recurrence's."""
    monkeypatch.setattr(ssm_module, "MAX_CHUNKS_FOR_MATMUL", 10**9 if matmul_between_chunks else 0)
    g = torch.Generator().manual_seed(0)
    b, h, T, p, n = 2, 3, 29, 4, 5
    x, B, C = torch.randn(b, h, T, p, generator=g), *torch.randn(2, b, T, n, generator=g)
    A = -3 * torch.rand(b, h, T, generator=g)  # strong decays: exp(-3) per step at most
    h0 = torch.randn(b, h, p, n, generator=g)
    inputs = [t.requires_grad_() for t in (x, A, B, C, h0)]

    def recurrence(x, A, B, C, h0):
        s, ys = h0, []
        for t in range(T):
            s = s * A[:, :, t, None, None].exp() + torch.einsum("bhp,bn->bhpn", x[:, :, t], B[:, t])
            ys.append(torch.einsum("bhpn,bn->bhp", s, C[:, t]))
        return torch.stack(ys, dim=2), s

    x, A, B, C, h0 = inputs
    got, want = ssm_module.ssd(x, A, B, C, chunk, h0), recurrence(*inputs)
    grads = [torch.autograd.grad(sum(o.square().sum() for o in out), inputs) for out in (got, want)]
    for a, b_ in zip([*got, *grads[0]], [*want, *grads[1]], strict=True):
        assert rel_err(a, b_) < 1e-5


@pytest.fixture(scope="module")
def carry_model() -> OCSlotSSM:
    torch.manual_seed(0)
    return OCSlotSSM(Config(**TINY.to_dict() | {"slot_carry": True})).eval()


@pytest.mark.parametrize("carry", [False, True], ids=["queries", "slot_carry"])
@pytest.mark.parametrize("chunks", [[11], [1] * 11, [3, 3, 3, 2], [5, 1, 4, 1], [2, 9]])
def test_streaming_matches_parallel(model, carry_model, video, chunks, carry):
    model = carry_model if carry else model
    with torch.no_grad():
        full = model(video)
        cache = model.alloc_cache(batch=2)
        parts, t = [], 0
        for c in chunks:
            parts.append(model(video[:, t : t + c], cache=cache))
            t += c
    assert cache.frames == 11
    for name in ("masks", "log_depth", "attention", "slots", "rgb"):
        streamed = torch.cat([getattr(p, name) for p in parts], dim=1)
        assert rel_err(streamed, getattr(full, name)) < 1e-4, name


def test_slot_carry_starts_each_frame_from_the_last(carry_model, video):
    """With slot_carry, frame t's slots are read starting from frame t - 1's: the first frame
    is what the learned queries give, later frames depend on what came before (a clip of
    frame 5 alone differs from frame 5 after frames 0-4), and the same weights without the
    carry read every frame from the queries."""
    with torch.no_grad():
        full = carry_model(video)
        alone = carry_model(video[:, 5:6])
        queries = carry_model.with_config(slot_carry=False)(video)
    torch.testing.assert_close(full.slots[:, :1], queries.slots[:, :1])
    assert rel_err(full.slots[:, 5], alone.slots[:, 0]) > 1e-3
    assert rel_err(full.slots[:, 5], queries.slots[:, 5]) > 1e-3


def test_flow_head_streams_like_parallel(video):
    """The optional flow head is part of the same per-slot decoding: same agreement."""
    torch.manual_seed(0)
    m = OCSlotSSM(Config(**TINY.to_dict() | {"flow_head": True})).eval()
    with torch.no_grad():
        full = m(video)
        cache = m.alloc_cache(batch=2)
        streamed = torch.cat([m(video[:, t : t + 3], cache=cache).flow for t in (0, 3, 6, 9)], 1)
    assert full.flow.shape == (2, 11, 2, 16, 16)
    assert rel_err(streamed, full.flow) < 1e-4
    # adding the head changes nothing else: the other channels are decoded as before
    assert OCSlotSSM(TINY).decoder.mlp[-1].out_features + 2 == m.decoder.mlp[-1].out_features


def test_depth_head_streams_like_parallel_and_only_adds_to_depth(video):
    """The depth head (Config.depth_head) is per-slot decoding too: streaming agrees with the
    parallel mode; its residual moves the depth and nothing else, and its gradient reaches it."""
    torch.manual_seed(0)
    m = OCSlotSSM(Config(**TINY.to_dict() | {"depth_head": 16})).eval()
    torch.nn.init.normal_(m.decoder.depth_mlp[-1].weight, std=0.1)  # as if trained
    plain = OCSlotSSM(TINY).eval()
    plain.load_state_dict(m.state_dict(), strict=False)
    with torch.no_grad():
        full, without = m(video), plain(video)
        cache = m.alloc_cache(batch=2)
        streamed = torch.cat(
            [m(video[:, t : t + 3], cache=cache).log_depth for t in (0, 3, 6, 9)], 1
        )
    assert rel_err(streamed, full.log_depth) < 1e-4
    assert torch.equal(full.masks, without.masks) and torch.equal(full.rgb, without.rgb)
    assert rel_err(full.log_depth, without.log_depth) > 1e-3
    m.train()
    m(video).log_depth.mean().backward()
    assert m.decoder.depth_mlp[1].weight.grad.abs().sum() > 0


def test_decoder_stride_2_decodes_finer_with_the_same_weights(model, video):
    """decoder_stride=2 evaluates the same per-slot decoder at every mask pixel instead of at
    the tokens (then upsampled): same parameters, same output shapes, different (finer) masks,
    and streaming still agrees with the parallel mode."""
    fine = model.with_config(decoder_stride=2)  # strict: no parameter depends on the stride
    with torch.no_grad():
        full, coarse = fine(video), model(video)
        cache = fine.alloc_cache(batch=2)
        streamed = torch.cat([fine(video[:, t : t + 4], cache=cache).masks for t in (0, 4, 8)], 1)
    assert full.masks.shape == coarse.masks.shape == (2, 11, 4, 16, 16)
    torch.testing.assert_close(full.masks.sum(2), torch.ones(2, 11, 16, 16))
    torch.testing.assert_close(full.slots, coarse.slots)  # only the decoding differs
    assert rel_err(full.masks, coarse.masks) > 1e-3
    assert rel_err(streamed, full.masks) < 1e-4
    with pytest.raises(ValueError, match="decoder_stride"):
        Config(decoder_stride=3)


def test_inverted_attention_updates_are_weighted_means_of_the_tokens():
    """The OC variant's inverted attention: a softmax over slots (slots compete for every
    token), then each slot's weights renormalised over the tokens, so its update is a
    weighted mean of the values of the tokens it won. A mean does not change when every token
    is repeated, and is the token's own value when all tokens are the same; a sum (the
    softmax without the renormalisation) doubles and grows with the number of tokens."""
    torch.manual_seed(0)
    attention = InvertedAttention(16)
    slots, tokens = torch.randn(2, 5, 16), torch.randn(2, 12, 16)
    with torch.no_grad():
        updates, attn = attention(slots, tokens)
        repeated, _ = attention(slots, tokens.repeat(1, 2, 1))
        same, _ = attention(slots, tokens[:, :1].expand(-1, 30, -1))
        values = attention.to_kv(attention.norm_tokens(tokens)).chunk(2, -1)[1]
        moved = slots.clone()
        moved[:, 4] = torch.randn(2, 16)  # (a constant shift would vanish in its LayerNorm)
        others, _ = attention(moved, tokens)
    torch.testing.assert_close(attn.sum(1), torch.ones(2, 12))  # competition over slots
    torch.testing.assert_close(repeated, updates)
    torch.testing.assert_close(same, values[:, :1].expand(-1, 5, -1))
    # the mean's weights are each slot's shares of the tokens, renormalised over the tokens
    shares = attn / attn.sum(-1, keepdim=True)
    torch.testing.assert_close(updates, torch.einsum("bnl,bld->bnd", shares, values))
    # so moving one slot changes what the others read (attention over tokens could not)
    assert (others[:, :4] - updates[:, :4]).abs().amax() > 1e-3


def test_retired_experiments_are_refused_but_old_configs_load():
    """slot_init, slot_noise and slot_carry_from lost (model card) and left the model: a
    config saved while they existed loads when it holds the shipped value; asking for the
    experiment fails."""
    saved = TINY.to_dict() | {
        "slot_init": "queries",
        "slot_noise": 0.0,
        "slot_carry_from": "encoder",
    }
    assert Config.from_dict(saved) == TINY
    # chunk_size no longer means anything (the scan picks its chunk length): any value loads
    for chunk in (4, 8, 64):
        assert Config.from_dict(TINY.to_dict() | {"chunk_size": chunk}) == TINY
    for key, value in (("slot_init", "placed"), ("slot_noise", 1.0), ("slot_carry_from", "block")):
        with pytest.raises(ValueError, match=f"{key}.*removed"):
            Config.from_dict(TINY.to_dict() | {key: value})
    with pytest.raises(TypeError):
        Config(slot_noise=1.0)


def test_outputs_are_well_formed(model, video):
    with torch.no_grad():
        out = model(video)
    assert out.masks.shape == (2, 11, 4, 16, 16)
    assert out.log_depth.shape == (2, 11, 16, 16)
    assert out.attention.shape == (2, 11, 4, 8, 8)
    assert out.rgb.shape == (2, 11, 3, 16, 16)
    assert out.flow is None  # no flow head unless the config asks for one
    torch.testing.assert_close(out.masks.sum(2), torch.ones(2, 11, 16, 16))
    torch.testing.assert_close(out.attention.sum(2), torch.ones(2, 11, 8, 8))
    assert (out.depth > 0).all()


@pytest.mark.parametrize("stride", [2, 8])
def test_encoder_stride_sets_the_token_grid_with_the_same_parameters(stride):
    """Config.encoder_stride: the token grid and the attention maps are the input over the
    stride (8: a frame twice as large gives stride 4's grid; 2: a grid twice as fine), with
    the same parameters (only which convolutions stride changes); masks stay at half the
    input; streaming agrees with the parallel mode; frames must be multiples of the stride."""
    torch.manual_seed(0)
    config = Config(**TINY.to_dict() | {"image_size": 64, "encoder_stride": stride})
    model = OCSlotSSM(config).eval()
    shapes = {k: v.shape for k, v in OCSlotSSM(TINY).state_dict().items()}
    assert {k: v.shape for k, v in model.state_dict().items()} == shapes
    video = torch.rand(2, 6, 3, 64, 48, generator=torch.Generator().manual_seed(2))
    with torch.no_grad():
        out = model(video)
        cache = model.alloc_cache(batch=2)
        streamed = torch.cat([model(video[:, t : t + 3], cache=cache).masks for t in (0, 3)], 1)
    gh, gw = 64 // stride, 48 // stride
    assert model.encoder(video[:, 0]).shape == (2, gh * gw, TINY.dim)
    assert out.attention.shape == (2, 6, 4, gh, gw)
    assert out.masks.shape == (2, 6, 4, 32, 24)
    assert rel_err(streamed, out.masks) < 1e-4
    with pytest.raises(ValueError, match=f"multiples of {stride}"):
        model(video[..., : 64 - stride // 2, :])  # 63 or 60 rows
    with pytest.raises(ValueError, match="encoder_stride"):
        Config(encoder_stride=16)
    with pytest.raises(ValueError, match="multiple of encoder_stride"):
        Config(image_size=36, encoder_stride=8)


def test_time_is_causal(model, video):
    """Changing frame 7 must not change the outputs for frames 0..6."""
    edited = video.clone()
    edited[:, 7:] = torch.rand_like(edited[:, 7:])
    with torch.no_grad():
        a, b = model(video), model(edited)
    torch.testing.assert_close(a.log_depth[:, :7], b.log_depth[:, :7])
    assert not torch.allclose(a.log_depth[:, 7:], b.log_depth[:, 7:])


def test_deterministic_and_any_slot_count(model, video):
    with torch.no_grad():
        torch.testing.assert_close(model(video).masks, model(video).masks, rtol=0, atol=0)
        for n in (1, 3, 9):
            assert model(video, num_slots=n).masks.shape[2] == n


def test_extra_slots_are_deterministic_and_distinct(model, video):
    """Beyond the trained number of slots, extra initial slots come from a fixed seed."""
    a, b = model.initial_slots(1, 7, "cpu"), model.initial_slots(1, 7, "cpu")
    assert torch.equal(a, b)
    assert torch.equal(a[0, :4], model.slot_queries)
    assert torch.cdist(a[0], a[0]).add(torch.eye(7)).min() > 0


def test_next_frame_prediction_starts_as_the_frame_and_sees_only_the_past(video):
    """Config.predict_next: the predictor starts as "no change" (the prediction of frame t + 1
    is frame t's own decoding) and leaves the frame outputs alone; once it has learned
    something, the prediction made at frame t still depends on frames <= t only. A model
    without the predictor refuses to predict."""
    torch.manual_seed(0)
    m = OCSlotSSM(Config(**TINY.to_dict() | {"predict_next": True, "slot_carry": True})).eval()
    with torch.no_grad():
        plain, ahead = m(video), m(video, predict_next=True)
        assert plain.next_log_depth is None
        torch.testing.assert_close(ahead.log_depth, plain.log_depth)
        torch.testing.assert_close(ahead.next_log_depth, ahead.log_depth)
        torch.testing.assert_close(ahead.next_rgb, ahead.rgb)
        m.predictor[-1].weight.normal_()
        m.predict_shift.weight.normal_(std=0.1)
        moved = m(video, predict_next=True)
        later = video.clone()
        later[:, 6:] = torch.rand_like(later[:, 6:])
        changed = m(later, predict_next=True)
    assert (moved.next_log_depth - moved.log_depth).abs().max() > 1e-3
    torch.testing.assert_close(
        changed.next_log_depth[:, :6], moved.next_log_depth[:, :6], atol=1e-6, rtol=0
    )  # an untrained decoder's depth barely follows its input: 2e-4 below, not 1e-3
    assert (changed.next_log_depth[:, 6:] - moved.next_log_depth[:, 6:]).abs().max() > 1e-4
    with pytest.raises(ValueError, match="predict_next"):
        OCSlotSSM(TINY)(video, predict_next=True)


@pytest.mark.parametrize("extra", [{}, {"decoder_stride": 2}])
def test_every_parameter_gets_a_gradient(video, extra):
    torch.manual_seed(0)
    m = OCSlotSSM(Config(**TINY.to_dict() | extra)).train()
    out = m(video)
    (out.log_depth.mean() + out.rgb.mean()).backward()
    missing = [n for n, p in m.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing


@pytest.mark.parametrize(
    "bad, error, match",
    [
        (torch.rand(2, 3, 32, 32), ValueError, "shape"),
        (torch.rand(1, 0, 3, 32, 32), ValueError, "no frames"),
        (torch.rand(1, 2, 1, 32, 32), ValueError, "shape"),
        (torch.rand(1, 2, 3, 30, 32), ValueError, "multiples of 4"),
        (torch.full((1, 2, 3, 32, 32), float("nan")), ValueError, "NaN"),
        (torch.zeros(1, 2, 3, 32, 32, dtype=torch.uint8), TypeError, "float"),
    ],
)
def test_bad_input_is_refused_clearly(model, bad, error, match):
    with pytest.raises(error, match=match):
        model(bad)


def test_cache_mismatch_is_refused(model, video):
    cache = model.alloc_cache(batch=1, num_slots=3)
    with pytest.raises(ValueError, match="batch"):
        model(video, cache=cache)
    with pytest.raises(ValueError, match="slots"):
        model(video[:1], num_slots=5, cache=cache)
    with pytest.raises(ValueError):
        model.alloc_cache(num_slots=0)


def test_unknown_config_key_fails_loudly():
    with pytest.raises(ValueError, match="unknown config keys"):
        Config.from_dict(TINY.to_dict() | {"num_slot": 3})
    with pytest.raises(ValueError):
        Config(image_size=30)


def test_save_load_roundtrip_is_strict(model, video, tmp_path):
    model.save_pretrained(tmp_path / "w")
    loaded = OCSlotSSM.from_pretrained(tmp_path / "w")
    assert loaded.config == TINY and not loaded.training
    with torch.no_grad():
        torch.testing.assert_close(loaded(video).masks, model(video).masks)

    # a checkpoint made for another architecture must not half-load
    (tmp_path / "other").mkdir()
    OCSlotSSM(Config(**TINY.to_dict() | {"num_blocks": 1})).save_pretrained(tmp_path / "other")
    cfg = json.loads((tmp_path / "w" / "config.json").read_text())
    (tmp_path / "other" / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(RuntimeError, match="do not match"):
        OCSlotSSM.from_pretrained(tmp_path / "other")

    (tmp_path / "w" / "config.json").write_text(json.dumps(cfg | {"bogus": 1}))
    with pytest.raises(ValueError, match="bogus"):
        OCSlotSSM.from_pretrained(tmp_path / "w")


def test_bundled_weights_load_offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    m = OCSlotSSM.from_pretrained("weights")
    with torch.no_grad():
        out = m(torch.rand(1, 2, 3, m.config.image_size, m.config.image_size))
    assert out.masks.shape[2] == m.config.num_slots


@pytest.mark.parametrize("chunks", [[13], [1] * 13, [5, 1, 7], [8, 5]])
def test_bundled_weights_stream_like_parallel(chunks):
    """The agreement of the two modes on the trained weights, as shipped (slot IDs from
    refined, tracked masks), on a scene from the project's renderer."""
    from .app_helpers import scene_frames

    m = OCSlotSSM.from_pretrained("weights")
    assert m.config.mask_refine_radius > 0  # the shipped config refines
    frames = scene_frames(frames=13, size=m.config.image_size, seed=5)
    video = torch.from_numpy(frames).permute(0, 3, 1, 2).float().div(255).unsqueeze(0)
    with torch.no_grad():
        full = m(video)
        segments = SlotSegmenter.for_model(m.config)(full.masks[0], video[0])
        cache, segmenter, parts, streamed, t = (
            m.alloc_cache(),
            SlotSegmenter.for_model(m.config),
            [],
            [],
            0,
        )
        for c in chunks:
            parts.append(m(video[:, t : t + c], cache=cache))
            streamed.append(segmenter(parts[-1].masks[0], video[0, t : t + c]))
            t += c
    for name in ("masks", "log_depth", "attention", "slots", "rgb"):
        joined = torch.cat([getattr(p, name) for p in parts], dim=1)
        assert rel_err(joined, getattr(full, name)) < 1e-4, name
    assert rel_err(torch.cat([s.masks for s in streamed]), segments.masks) < 1e-4
    ids = torch.cat([s.slot_ids for s in streamed])
    assert torch.equal(ids, segments.slot_ids)


def test_decoder_runs_the_same_with_and_without_gradients(model, video):
    """Without gradients the decoder's MLP runs a few frames at a time (cache-sized
    activations, model/decoder.py); its output must not depend on that."""
    assert video.shape[0] * video.shape[1] > 2 * decoder_module.INFERENCE_FRAMES  # many pieces
    with torch.no_grad():
        pieces = model(video)
    whole = model(video)
    for name in ("masks", "log_depth", "rgb"):
        torch.testing.assert_close(
            getattr(pieces, name), getattr(whole, name).detach(), atol=1e-6, rtol=1e-5
        )
