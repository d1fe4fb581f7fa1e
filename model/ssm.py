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
from einops import rearrange, repeat
from torch import Tensor, nn


@dataclass
class SSMState:
    """What one SSM layer carries from one frame to the next."""

    conv: Tensor  # (b, conv_dim, d_conv - 1): the last inputs of the causal convolution
    ssm: Tensor  # (b, heads, headdim, d_state): the hidden state h_t


def segsum(x: Tensor) -> Tensor:
    """(..., T) -> (..., T, T) with out[..., i, j] = sum(x[..., j+1 : i+1]) for j <= i, else -inf.

    Computed by masked cumsum (stable, unlike differences of one cumsum)."""
    T = x.size(-1)
    x = repeat(x, "... d -> ... d e", e=T)
    below = torch.tril(torch.ones(T, T, dtype=torch.bool, device=x.device), diagonal=-1)
    x = x.masked_fill(~below, 0)
    x_segsum = torch.cumsum(x, dim=-2)
    on_or_below = torch.tril(torch.ones(T, T, dtype=torch.bool, device=x.device), diagonal=0)
    return x_segsum.masked_fill(~on_or_below, -torch.inf)


def ssd(
    x: Tensor, A: Tensor, B: Tensor, C: Tensor, chunk: int, h0: Tensor
) -> tuple[Tensor, Tensor]:
    """Chunked scan of h_t = exp(A_t) h_{t-1} + B_t x_t,  y_t = C_t h_t  (Mamba-2, listing 1).

    x: (b, T, h, p) input already scaled by dt;  A: (b, T, h) log-decay (A * dt);
    B, C: (b, T, n) shared by all heads;  h0: (b, h, p, n) initial state.
    Returns y: (b, T, h, p) and the final state (b, h, p, n). T is padded to a multiple of
    `chunk` with zero input and zero log-decay, which leaves the state unchanged.
    """
    T = x.shape[1]
    pad = (-T) % chunk
    if pad:
        x, B, C = (F.pad(t, (0, 0) * (t.dim() - 2) + (0, pad)) for t in (x, B, C))
        A = F.pad(A, (0, 0, 0, pad))
    x, A, B, C = (rearrange(t, "b (c l) ... -> b c l ...", l=chunk) for t in (x, A, B, C))
    A = rearrange(A, "b c l h -> b h c l")
    A_cumsum = torch.cumsum(A, dim=-1)

    # 1. outputs within each chunk (the quadratic, attention-like form)
    L = torch.exp(segsum(A))
    y_diag = torch.einsum("bcln,bcsn,bhcls,bcshp->bclhp", C, B, L, x)
    # 2. state at the end of each chunk, from that chunk's inputs
    decay_states = torch.exp(A_cumsum[..., -1:] - A_cumsum)
    states = torch.einsum("bcln,bhcl,bclhp->bchpn", B, decay_states, x)
    # 3. pass states between chunks (a short recurrence over chunks)
    states = torch.cat([h0.unsqueeze(1), states], dim=1)
    decay_chunk = torch.exp(segsum(F.pad(A_cumsum[..., -1], (1, 0))))
    states = torch.einsum("bhzc,bchpn->bzhpn", decay_chunk, states)
    states, final = states[:, :-1], states[:, -1]
    # 4. contribution of the carried-in state to each output
    y_off = torch.einsum("bcln,bchpn,bhcl->bclhp", C, states, torch.exp(A_cumsum))

    y = rearrange(y_diag + y_off, "b c l h p -> b (c l) h p")
    return y[:, :T], final


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

    def __init__(self, dim: int, d_state: int, headdim: int, expand: int, d_conv: int, chunk: int):
        super().__init__()
        self.d_inner, self.d_state, self.headdim = expand * dim, d_state, headdim
        self.heads = self.d_inner // headdim
        self.d_conv, self.chunk = d_conv, chunk
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
        # causal conv over time, continuing from the carried inputs
        xBC = torch.cat([state.conv, rearrange(xBC, "b t c -> b c t")], dim=-1)
        conv_state = xBC[..., -(self.d_conv - 1) :]
        xBC = rearrange(
            F.conv1d(xBC, self.conv1d.weight, self.conv1d.bias, groups=self.conv_dim),
            "b c t -> b t c",
        )
        x, B, C = self._split(xBC)
        A = -torch.exp(self.A_log)  # (h,)
        y, h = ssd(x * dt.unsqueeze(-1), A * dt, B, C, self.chunk, state.ssm)
        y = y + self.D[:, None] * x
        y = self.norm(rearrange(y, "b t h p -> b t (h p)"), z)
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
