"""The U-Nets' primitive layers, as in EDM's `training/networks.py`: weight initialisation with a named mode,
a linear layer, a 2-D convolution with optional FIR up/downsampling, group normalisation, and the
self-attention weights softmax(qᵀk / sqrt(c))."""

import math

import torch
from torch.nn.functional import conv2d, conv_transpose2d, dropout, group_norm, silu

from edmctl.networks.functions import Attention, SiLUConv


INIT_BOUNDS = {  # mode -> (distribution, its scale from fan_in and fan_out): uniform bound or normal std
    "xavier_uniform": ("uniform", lambda fan_in, fan_out: math.sqrt(6 / (fan_in + fan_out))),
    "xavier_normal": ("normal", lambda fan_in, fan_out: math.sqrt(2 / (fan_in + fan_out))),
    "kaiming_uniform": ("uniform", lambda fan_in, fan_out: math.sqrt(3 / fan_in)),
    "kaiming_normal": ("normal", lambda fan_in, fan_out: math.sqrt(1 / fan_in)),
}
UNIT_DRAWS = {"uniform": lambda shape: torch.rand(*shape) * 2 - 1, "normal": lambda shape: torch.randn(*shape)}


def weight_init(shape: list[int], mode: str, fan_in: int, fan_out: int, gain: float = 1.0) -> torch.Tensor:
    """A weight tensor drawn as `mode` says (Glorot & Bengio 2010; He et al. 2015) times `gain`, from torch's
    global RNG, with EDM's arithmetic: scale·U(−1, 1) or scale·N(0, 1), then ·gain, drawn even when gain is 0,
    so that torch.manual_seed(s) and the same layers give EDM's initial weights bit for bit. Under
    `torch.device("meta")` (counting parameters) there are no values to draw."""
    distribution, scale = INIT_BOUNDS[mode]
    with torch.no_grad():
        return scale(fan_in, fan_out) * UNIT_DRAWS[distribution](shape) * gain


class Linear(torch.nn.Module):
    """y = x Wᵀ + b with W drawn by `init_mode` and scaled by `init_weight` (bias by `init_bias`)."""

    def __init__(self, in_features: int, out_features: int, bias: bool = True, init_mode: str = "kaiming_normal",
                 init_weight: float = 1, init_bias: float = 0):
        super().__init__()
        self.in_features = in_features
        self.out_features = out_features
        fans = dict(mode=init_mode, fan_in=in_features, fan_out=out_features)
        self.weight = torch.nn.Parameter(weight_init([out_features, in_features], **fans, gain=init_weight))
        self.bias = torch.nn.Parameter(weight_init([out_features], **fans, gain=init_bias)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x @ self.weight.to(x.dtype).t()
        return x if self.bias is None else x.add_(self.bias.to(x.dtype))  # in place: x is this layer's own


def resample_kernel(resample_filter: list[float]) -> torch.Tensor:
    """The separable 2-D FIR filter f fᵀ / (Σf)², shape (1, 1, k, k): [1,1] is box, [1,3,3,1] is bilinear.
    A small constant, made on the CPU whatever the default device (`module.to(device)` moves it)."""
    f = torch.as_tensor(resample_filter, dtype=torch.float32, device="cpu")
    return (f.outer(f) / f.sum().square())[None, None]


class Conv2d(torch.nn.Module):
    """A `kernel`×`kernel` convolution (kernel 0: none, resampling only), optionally preceded by a 2× FIR
    upsampling or downsampling with `resample_filter`. `fused_resample` convolves first and then
    downsamples (or upsamples, then convolves) in one strided pass, as NCSN++'s residual encoder does."""

    def __init__(self, in_channels: int, out_channels: int, kernel: int, bias: bool = True, up: bool = False,
                 down: bool = False, resample_filter: list[float] = (1, 1), fused_resample: bool = False,
                 init_mode: str = "kaiming_normal", init_weight: float = 1, init_bias: float = 0):
        if up and down:
            raise ValueError("a convolution resamples up or down, not both")
        super().__init__()
        self.in_channels = in_channels
        self.out_channels = out_channels
        self.up = up
        self.down = down
        self.fused_resample = fused_resample
        fans = dict(mode=init_mode, fan_in=in_channels * kernel * kernel, fan_out=out_channels * kernel * kernel)
        shape = [out_channels, in_channels, kernel, kernel]
        self.weight = torch.nn.Parameter(weight_init(shape, **fans, gain=init_weight)) if kernel else None
        self.bias = torch.nn.Parameter(weight_init([out_channels], **fans, gain=init_bias)) if kernel and bias else None
        self.register_buffer("resample_filter", resample_kernel(list(resample_filter)) if up or down else None)
        self._channels_last = None  # (key, W laid out channels-last) for inference, see `_weight`

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        w = None if self.weight is None else self._weight(x)
        f = None if self.resample_filter is None else self.resample_filter.to(x.dtype)
        w_pad = 0 if w is None else w.shape[-1] // 2
        f_pad = 0 if f is None else (f.shape[-1] - 1) // 2
        if self.fused_resample and w is not None and (self.up or self.down):
            x = self._fused(x, w, f, w_pad, f_pad)
        else:
            if self.up:
                x = conv_transpose2d(x, (f * 4).tile([x.shape[1], 1, 1, 1]), groups=x.shape[1], stride=2,
                                     padding=f_pad)
            if self.down:
                x = conv2d(x, f.tile([x.shape[1], 1, 1, 1]), groups=x.shape[1], stride=2, padding=f_pad)
            if w is not None:
                x = conv2d(x, w, padding=w_pad)
        return self._add_bias(x)

    def after_silu(self, h: torch.Tensor, p: float = 0.0) -> torch.Tensor:
        """self(drop_p(silu(h))), dropout (training only when p > 0) with its mask drawn as EDM's over the
        contiguous layout. h is an activation the caller made and does not use again: without autograd SiLU
        overwrites it (the same bits, one buffer fewer); with autograd a plain k×k convolution goes through
        `SiLUConv` (edmctl/networks/functions.py), which keeps less for backward and gives the same bits."""
        if not torch.is_grad_enabled():
            return self(drop(silu(h, inplace=True), p))
        if self.weight is not None and not (self.up or self.down):
            x, _ = SiLUConv.apply(h, self.weight.to(h.dtype), p)
            # out of place: callers add to the result in place, which torch.func.vmap forbids on a function's output
            return x.clone() if self.bias is None else x + self.bias.to(x.dtype).reshape(1, -1, 1, 1)
        return self(drop(silu(h), p))

    def _add_bias(self, x: torch.Tensor) -> torch.Tensor:
        if self.bias is not None:
            x = x.add_(self.bias.to(x.dtype).reshape(1, -1, 1, 1))  # in place: a kernel's output is ours
        return x

    def _weight(self, x: torch.Tensor) -> torch.Tensor:
        """W in x's dtype. A convolution computes in x's memory layout and lays W out the same way on every call;
        in inference on a channels-last x (attention leaves one) that copy is kept until W changes (its version
        counter moves) instead: the same tensor torch would make, so the same bits, once per sampler run."""
        w = self.weight.to(x.dtype)
        if torch.is_grad_enabled() or x.is_contiguous() or not x.is_contiguous(memory_format=torch.channels_last):
            return w
        key = (self.weight.data_ptr(), self.weight._version, x.dtype)
        if self._channels_last is None or self._channels_last[0] != key:
            self._channels_last = (key, w.contiguous(memory_format=torch.channels_last))
        return self._channels_last[1]

    def _fused(self, x: torch.Tensor, w: torch.Tensor, f: torch.Tensor, w_pad: int, f_pad: int) -> torch.Tensor:
        """Up: the transposed filter pads by f_pad − w_pad and the convolution by w_pad − f_pad (whichever is
        positive), so that a k×k kernel on H×H gives 2H×2H as unfused. Down: pad once by both, then stride."""
        if self.up:
            x = conv_transpose2d(x, (f * 4).tile([x.shape[1], 1, 1, 1]), groups=x.shape[1], stride=2,
                                 padding=max(f_pad - w_pad, 0))
            return conv2d(x, w, padding=max(w_pad - f_pad, 0))
        x = conv2d(x, w, padding=w_pad + f_pad)
        return conv2d(x, f.tile([x.shape[1], 1, 1, 1]), groups=x.shape[1], stride=2)


def drop(x: torch.Tensor, p: float) -> torch.Tensor:
    """Dropout with probability p (none when p is 0), its mask drawn over the contiguous layout, as EDM's tensors
    are (attention leaves channels-last ones), so that the same seed drops the same elements as EDM. In place:
    x is an activation's output, which no backward pass keeps."""
    return dropout(x.contiguous(), p=p, inplace=True) if p else x


class GroupNorm(torch.nn.Module):
    """Group normalisation with min(`num_groups`, channels / `min_channels_per_group`) groups."""

    def __init__(self, num_channels: int, num_groups: int = 32, min_channels_per_group: int = 4, eps: float = 1e-5):
        super().__init__()
        self.num_groups = max(1, min(num_groups, num_channels // min_channels_per_group))
        if num_channels % self.num_groups:
            raise ValueError(f"{num_channels} channels do not split into {self.num_groups} groups")
        self.eps = eps
        self.weight = torch.nn.Parameter(torch.ones(num_channels))
        self.bias = torch.nn.Parameter(torch.zeros(num_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return group_norm(x, self.num_groups, self.weight.to(x.dtype), self.bias.to(x.dtype), self.eps)


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """softmax(qᵀk / sqrt(c)) applied to v, for q, k, v of shape (batch·heads, c, positions); computed in float32
    by `Attention` (edmctl/networks/functions.py): torch's scaled_dot_product_attention to the bit, keeping less."""
    out, _ = Attention.apply(q.transpose(1, 2).float(), k.transpose(1, 2).float(), v.transpose(1, 2).float())
    return out.transpose(1, 2).to(v.dtype)
