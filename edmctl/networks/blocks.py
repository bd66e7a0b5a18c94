"""The U-Net block shared by DDPM++, NCSN++ and ADM (EDM's `UNetBlock`): a residual block conditioned on the
embedding vector, with optional 2× up/downsampling and optional multi-head self-attention after it."""

import torch

from edmctl.networks.layers import Conv2d, GroupNorm, Linear, attention


class UNetBlock(torch.nn.Module):
    """x ← skip_scale·(conv1(drop(act(norm1(conv0(act(norm0 x))) ⊙ emb))) + skip(x)), then optionally
    x ← skip_scale·(proj(attention(qkv(norm2 x))) + x). `adaptive_scale` conditions by (1 + scale)·h + shift
    (ADM), otherwise by adding the embedding before norm1 (DDPM++/NCSN++). The residual sums and scalings are done
    in place on tensors the block made itself (conv outputs, which autograd does not keep), as EDM does, saving
    a buffer per operation; the results are those of the out-of-place formulas bit for bit."""

    def __init__(self, in_channels: int, out_channels: int, emb_channels: int, up: bool = False,
                 down: bool = False, attention: bool = False, num_heads: int | None = None,
                 channels_per_head: int = 64, dropout: float = 0.0, skip_scale: float = 1.0, eps: float = 1e-5,
                 resample_filter: list[float] = (1, 1), resample_proj: bool = False, adaptive_scale: bool = True,
                 init: dict | None = None, init_zero: dict | None = None, init_attn: dict | None = None):
        super().__init__()
        init = init or {}
        init_zero = dict(init_weight=0) if init_zero is None else init_zero
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.num_heads = heads_for(out_channels, attention, num_heads, channels_per_head)
        self.dropout = dropout
        self.skip_scale = skip_scale
        self.adaptive_scale = adaptive_scale

        resample = dict(up=up, down=down, resample_filter=resample_filter)
        self.norm0 = GroupNorm(in_channels, eps=eps)
        self.conv0 = Conv2d(in_channels, out_channels, kernel=3, **resample, **init)
        self.affine = Linear(emb_channels, out_channels * (2 if adaptive_scale else 1), **init)
        self.norm1 = GroupNorm(out_channels, eps=eps)
        self.conv1 = Conv2d(out_channels, out_channels, kernel=3, **init_zero)
        self.skip = None
        if out_channels != in_channels or up or down:
            kernel = 1 if resample_proj or out_channels != in_channels else 0
            self.skip = Conv2d(in_channels, out_channels, kernel=kernel, **resample, **init)
        if self.num_heads:
            self.norm2 = GroupNorm(out_channels, eps=eps)
            self.qkv = Conv2d(out_channels, out_channels * 3, kernel=1, **(init if init_attn is None else init_attn))
            self.proj = Conv2d(out_channels, out_channels, kernel=1, **init_zero)

    def forward(self, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
        orig = x
        x = self.conv0.after_silu(self.norm0(x))
        params = self.affine(emb)[:, :, None, None].to(x.dtype)
        if self.adaptive_scale:
            scale, shift = params.chunk(2, dim=1)
            x = torch.addcmul(shift, self.norm1(x), scale + 1)
        else:
            x = self.norm1(x.add_(params))
        x = self.conv1.after_silu(x, self.dropout if self.training else 0.0)
        x = x.add_(orig if self.skip is None else self.skip(orig)).mul_(self.skip_scale)
        if self.num_heads:
            x = self.proj(self._attend(x)).add_(x).mul_(self.skip_scale)
        return x

    def _attend(self, x: torch.Tensor) -> torch.Tensor:
        n, c, h, w = x.shape
        q, k, v = self.qkv(self.norm2(x)).reshape(n * self.num_heads, c // self.num_heads, 3, h * w).unbind(2)
        return attention(q, k, v).reshape(n, c, h, w)


def heads_for(channels: int, attention: bool, num_heads: int | None, channels_per_head: int) -> int:
    """Number of attention heads: 0 without attention, `num_heads` if given, else ⌊channels / channels_per_head⌋
    as EDM counts them, so that a level narrower than channels_per_head has no attention layer (ADM under 64
    channels), as in EDM."""
    if not attention:
        return 0
    heads = num_heads if num_heads is not None else channels // channels_per_head
    if heads and channels % heads:
        raise ValueError(f"{channels} channels do not split into {heads} attention heads")
    return heads
