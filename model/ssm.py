"""Time mixer: a selective state space model in the style of Mamba-2, in pure PyTorch.

Each slot is its own sequence over time (the caller reshapes (B, T, N, D) -> (B*N, T, D)),
and all slots share these parameters. Two execution paths compute the same function:

- `ssd`: the chunked scan of Mamba-2 (state space duality), for whole clips or chunks;
- `SelectiveSSM.step`: the recurrence itself, one frame at a time.

Both start from, and return, a carried `SSMState`, so a video can be processed in one call,
in chunks of any size, or frame by frame, with memory that does not grow with its length.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import Tensor, nn


@dataclass
class SSMState:
    """What one SSM layer carries from one frame to the next."""

    conv: Tensor  # (b, conv_dim, d_conv - 1): the last inputs of the causal convolution
    ssm: Tensor  # (b, heads, headdim, d_state): the hidden state h_t


# Chunk length of the parallel scan, chosen for speed (issue 14): the work within a chunk
# grows with it, the number of chunks (and of small ops over them) shrinks. Fwd + bwd of one
# layer, D = 64, 7 sequences, one CPU thread: 32 beats 16 and 64 for T >= 256 (T = 1024:
# 113 ms vs 143 and 121; the config's 8 took 190 with the previous scan); shorter clips use
# one chunk of their length. Any length gives the same outputs to float rounding, so it is
# not a setting of the model (saved configs' chunk_size is ignored: model/config.py RETIRED).
SCAN_CHUNK = 32
# Up to this many chunks, the states are passed between chunks by one matmul with the chunks'
# decay matrix (quadratic in the number of chunks, but one op); beyond, by a loop over the
# chunks (linear, a few small ops per chunk). Measured as above: the matmul still wins at
# 80 chunks (264 vs 397 ms, T = 2560) and at 160 (358 vs 481 ms, chunks of 16).
MAX_CHUNKS_FOR_MATMUL = 160


class _DecayMatrix(torch.autograd.Function):
    """(..., T) cumulative log-decays, float64 -> (..., T, T) float32 with
    out[..., i, j] = exp(cs[i] - cs[j]) for j <= i (the decay from step j to step i), else 0.

    The differences are taken in float64, so they are exact to float32 rounding however long
    the segment (a float32 cumsum loses the small differences of large sums). The backward is
    written out to stay in float32: d out[i, j] / d cs[i] = out[i, j] = -d out[i, j] / d cs[j]."""

    @staticmethod
    def forward(ctx, cs: Tensor) -> Tensor:
        T = cs.size(-1)
        diff = (cs[..., :, None] - cs[..., None, :]).float()
        causal = torch.ones(T, T, dtype=torch.bool, device=cs.device).tril()
        out = diff.masked_fill_(~causal, -torch.inf).exp_()
        ctx.save_for_backward(out)
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad: Tensor) -> Tensor:
        (out,) = ctx.saved_tensors
        g = grad * out
        return (g.sum(-1) - g.sum(-2)).double()


def decay_matrix(cs: Tensor) -> Tensor:
    """(..., T) cumulative log-decays (float64) -> (..., T, T): exp(segment sums), 0 above the
    diagonal. Mamba-2's exp(segsum(A)) with segsum(A)[i, j] = sum(A[j+1 : i+1])."""
    return _DecayMatrix.apply(cs)


def ssd(
    x: Tensor, A: Tensor, B: Tensor, C: Tensor, chunk: int, h0: Tensor
) -> tuple[Tensor, Tensor]:
    """Chunked scan of h_t = exp(A_t) h_{t-1} + B_t x_t,  y_t = C_t h_t  (Mamba-2, listing 1).

    x: (b, h, T, p) input already scaled by dt;  A: (b, h, T) log-decay (A * dt);
    B, C: (b, T, n) shared by all heads;  h0: (b, h, p, n) initial state.
    Returns y: (b, h, T, p) and the final state (b, h, p, n). T is padded to a multiple of
    `chunk` with zero input and zero log-decay, which leaves the state unchanged.
    Heads lead and time follows, so each step is one batched matmul over (b, h, chunks);
    B and C broadcast over the heads.
    """
    b, h, T, p = x.shape
    n = B.shape[-1]
    pad = (-T) % chunk
    if pad:
        x, A = F.pad(x, (0, 0, 0, pad)), F.pad(A, (0, pad))
        B, C = F.pad(B, (0, 0, 0, pad)), F.pad(C, (0, 0, 0, pad))
    c = x.shape[2] // chunk
    x = x.reshape(b, h, c, chunk, p)
    B, C = B.reshape(b, 1, c, chunk, n), C.reshape(b, 1, c, chunk, n)
    # float64: differences of these sums are taken below, and must keep their precision
    A_cumsum = torch.cumsum(A.reshape(b, h, c, chunk).double(), dim=-1)  # (b, h, c, l)

    # 1. outputs within each chunk (the quadratic, attention-like form): (b, h, c, l, s)
    mixing = (C @ B.transpose(-1, -2)) * decay_matrix(A_cumsum)
    # 2. state at the end of each chunk, from that chunk's inputs: (b, h, c, p, n)
    decay_states = torch.exp((A_cumsum[..., -1:] - A_cumsum).float())
    states = x.transpose(-1, -2) @ (B * decay_states[..., None])
    # 3. pass states between chunks: S_k = exp(a_k) S_{k-1} + states_k, from S_0 = h0
    chunk_decay = A_cumsum[..., -1]  # (b, h, c): log-decay over each whole chunk
    if c <= MAX_CHUNKS_FOR_MATMUL:  # all at once: (c+1, c+1) decay matrix times the states
        states = torch.cat([h0.unsqueeze(2), states], dim=2).flatten(-2)
        states = decay_matrix(torch.cumsum(F.pad(chunk_decay, (1, 0)), -1)) @ states
        states = states.unflatten(-1, (p, n))
        states, final = states[:, :, :-1], states[:, :, -1]
    else:  # one chunk after another
        decay = torch.exp(chunk_decay.float())[..., None, None]
        final, entering = h0, []
        for k in range(c):
            entering.append(final)
            final = final * decay[:, :, k] + states[:, :, k]
        states = torch.stack(entering, dim=2)
    # 4. contribution of the carried-in state to each output, plus the within-chunk outputs
    y_off = (C * torch.exp(A_cumsum.float())[..., None]) @ states.transpose(-1, -2)
    y = torch.baddbmm(
        y_off.reshape(-1, chunk, p), mixing.reshape(-1, chunk, chunk), x.reshape(-1, chunk, p)
    )
    return y.view(b, h, c * chunk, p)[:, :, :T], final


class RMSNormGated(nn.Module):
    """RMSNorm(y * silu(z)): the gated output norm of Mamba-2."""

    def __init__(self, dim: int, eps: float = 1e-5):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(dim))

    def forward(self, y: Tensor, z: Tensor) -> Tensor:
        y = y * F.silu(z)
        return y * torch.rsqrt(y.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


# initial step sizes, log-uniform in this range (Mamba's defaults)
DT_MIN, DT_MAX = 1e-3, 1e-1
# per-head decay rates A = -exp(A_log), uniform in this range
A_INIT_RANGE = (1.0, 16.0)


class SelectiveSSM(nn.Module):
    """Mamba-2 mixer: input-dependent step dt, scalar decay per head, short causal conv,
    gated output. (b, T, dim) -> (b, T, dim)."""

    def __init__(self, dim: int, d_state: int, headdim: int, expand: int, d_conv: int):
        super().__init__()
        self.d_inner, self.d_state, self.headdim = expand * dim, d_state, headdim
        self.heads = self.d_inner // headdim
        self.d_conv = d_conv
        self.conv_dim = self.d_inner + 2 * d_state  # x, B and C go through the conv

        self.in_proj = nn.Linear(dim, 2 * self.d_inner + 2 * d_state + self.heads, bias=False)
        self.conv1d = nn.Conv1d(self.conv_dim, self.conv_dim, d_conv, groups=self.conv_dim)
        dt = torch.exp(
            torch.rand(self.heads) * (math.log(DT_MAX) - math.log(DT_MIN)) + math.log(DT_MIN)
        )
        self.dt_bias = nn.Parameter(dt + torch.log(-torch.expm1(-dt)))  # inverse softplus
        self.A_log = nn.Parameter(torch.log(torch.empty(self.heads).uniform_(*A_INIT_RANGE)))
        self.D = nn.Parameter(torch.ones(self.heads))  # skip connection
        self.norm = RMSNormGated(self.d_inner)
        self.out_proj = nn.Linear(self.d_inner, dim, bias=False)

    def alloc(self, batch: int, device=None, dtype=torch.float32) -> SSMState:
        return SSMState(
            conv=torch.zeros(batch, self.conv_dim, self.d_conv - 1, device=device, dtype=dtype),
            ssm=torch.zeros(
                batch, self.heads, self.headdim, self.d_state, device=device, dtype=dtype
            ),
        )

    def _project(self, u: Tensor):
        z, xBC, dt = torch.split(self.in_proj(u), [self.d_inner, self.conv_dim, self.heads], dim=-1)
        return z, xBC, F.softplus(dt + self.dt_bias)

    def _split(self, xBC: Tensor):
        x, B, C = torch.split(F.silu(xBC), [self.d_inner, self.d_state, self.d_state], dim=-1)
        return rearrange(x, "... (h p) -> ... h p", p=self.headdim), B, C

    def forward(self, u: Tensor, state: SSMState | None = None) -> tuple[Tensor, SSMState]:
        """u: (b, T, dim) -> y: (b, T, dim) and the state after the last frame."""
        b, T, _ = u.shape
        if state is None:
            state = self.alloc(b, u.device, u.dtype)
        if T == 1:
            return self.step(u, state)
        z, xBC, dt = self._project(u)
        # causal conv over time, continuing from the carried inputs; channels lead, time follows
        xBC = torch.cat([state.conv, rearrange(xBC, "b t c -> b c t")], dim=-1)
        conv_state = xBC[..., -(self.d_conv - 1) :]
        xBC = F.silu(F.conv1d(xBC, self.conv1d.weight, self.conv1d.bias, groups=self.conv_dim))
        x, B, C = torch.split(xBC, [self.d_inner, self.d_state, self.d_state], dim=1)
        x = rearrange(x, "b (h p) t -> b h t p", p=self.headdim)  # a view
        dt = rearrange(dt, "b t h -> b h t")
        A = -torch.exp(self.A_log)  # (h,)
        y, h = ssd(
            x * dt[..., None],
            A[:, None] * dt,
            rearrange(B, "b n t -> b t n"),
            rearrange(C, "b n t -> b t n"),
            min(SCAN_CHUNK, T),
            state.ssm,
        )
        y = y + self.D[:, None, None] * x  # (b, h, T, p)
        y = self.norm(rearrange(y, "b h t p -> b t (h p)"), z)
        return self.out_proj(y), SSMState(conv=conv_state, ssm=h)

    def step(self, u: Tensor, state: SSMState) -> tuple[Tensor, SSMState]:
        """One frame: u (b, 1, dim) -> y (b, 1, dim), the recurrence written out."""
        z, xBC, dt = self._project(u[:, 0])  # (b, d_inner), (b, conv_dim), (b, h)
        window = torch.cat([state.conv, xBC.unsqueeze(-1)], dim=-1)  # (b, conv_dim, d_conv)
        xBC = (window * self.conv1d.weight.squeeze(1)).sum(-1) + self.conv1d.bias
        x, B, C = self._split(xBC)  # (b, h, p), (b, n), (b, n)
        dA = torch.exp(dt * -torch.exp(self.A_log))  # (b, h) decay of the state this frame
        h = state.ssm * dA[..., None, None] + torch.einsum("bh,bhp,bn->bhpn", dt, x, B)
        y = torch.einsum("bhpn,bn->bhp", h, C) + self.D[:, None] * x
        y = self.norm(rearrange(y, "b h p -> b (h p)"), z)
        return self.out_proj(y).unsqueeze(1), SSMState(conv=window[..., 1:], ssm=h)
