"""The U-Nets' primitive layers, as in EDM's `training/networks.py`: weight initialisation with a named mode,
a linear layer, a 2-D convolution with optional FIR up/downsampling, group normalisation, and the
self-attention weights softmax(qᵀk / sqrt(c))."""

import math

import torch
from torch.nn.functional import conv2d, conv_transpose2d, dropout, group_norm, silu


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
        `_SiLUConv`, which keeps less for backward and gives the same bits."""
        if not torch.is_grad_enabled():
            return self(drop(silu(h, inplace=True), p))
        if self.weight is not None and not (self.up or self.down):
            return self._add_bias(_SiLUConv.apply(h, self.weight.to(h.dtype), p))
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


class _SiLUConv(torch.autograd.Function):
    """conv2d(drop_p(silu(h)), W) (k×k, stride 1, same padding) whose backward pass keeps h and the dropout mask
    as booleans. Autograd through the same ops keeps h (for SiLU), the mask as floats (for dropout) and the
    dropped activations (for the convolution): here the activations are recomputed from h and the mask, which
    are the same numbers, and the backward is autograd's own formulas in its order (convolution_backward, the
    mask product, silu_backward), so the gradients are the same bits (tests/test_networks.py)."""

    @staticmethod
    def forward(ctx, h: torch.Tensor, weight: torch.Tensor, p: float) -> torch.Tensor:
        x = silu(h)
        keep = None
        if p:  # torch's dropout: noise = empty_like(x).bernoulli_(1 − p) / (1 − p), x ⊙ noise
            x = x.contiguous()
            noise = torch.empty_like(x).bernoulli_(1 - p)
            keep = noise.bool()
            x.mul_(noise.div_(1 - p))
        ctx.p = p
        ctx.save_for_backward(h, weight, keep)
        return conv2d(x, weight, padding=weight.shape[-1] // 2)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        h, weight, keep = ctx.saved_tensors
        x = silu(h)
        noise = None
        if keep is not None:
            noise = keep.to(x.dtype).div_(1 - ctx.p)
            x = x.contiguous().mul_(noise)
        pad = weight.shape[-1] // 2
        grad_x, grad_w, _ = torch.ops.aten.convolution_backward(
            grad, x, weight, None, [1, 1], [pad, pad], [1, 1], False, [0, 0], 1,
            [ctx.needs_input_grad[0], ctx.needs_input_grad[1], False])
        if grad_x is not None:
            grad_x = torch.ops.aten.silu_backward(grad_x if noise is None else grad_x * noise, h)
        return grad_x, grad_w, None


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


class _Attention(torch.autograd.Function):
    """out = softmax((q·f)(kᵀ·f)) v with f = sqrt(1/sqrt(c)), for q, k, v of shape (batch·heads, positions, c):
    the arithmetic of torch's `scaled_dot_product_attention` for 3-D inputs (its math path), without that path's
    guard for fully masked rows (three more passes over the weights; there is no mask). Autograd through the same
    ops would keep q·f and kᵀ·f for the backward pass; this keeps only q, k, v (views of the qkv convolution's
    output, alive anyway) and the weights W, and recomputes the two scalings, as EDM's AttentionOp keeps q, k and
    W. Backward is autograd's own formulas for bmm, softmax and mul, in its order: the same bits forward and
    backward, tested against torch's function in tests/test_networks.py."""

    @staticmethod
    def forward(ctx, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        qf, kf = _Attention.scaled(q, k)
        w = torch.bmm(qf, kf).softmax(-1)
        ctx.save_for_backward(q, k, v, w)
        return torch.bmm(w, v)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        q, k, v, w = ctx.saved_tensors
        qf, kf = _Attention.scaled(q, k)
        grad_w, grad_v = grad.bmm(v.transpose(1, 2)), w.transpose(1, 2).bmm(grad)
        grad_s = torch._softmax_backward_data(grad_w, w, -1, w.dtype)
        grad_q, grad_k = grad_s.bmm(kf.transpose(1, 2)), qf.transpose(1, 2).bmm(grad_s)
        f = _Attention.factor(q)
        return grad_q * f, (grad_k * f).transpose(1, 2), grad_v

    @staticmethod
    def factor(q: torch.Tensor) -> float:
        return math.sqrt(1 / math.sqrt(q.shape[-1]))  # the square root of the scale 1/sqrt(c), applied to both

    @staticmethod
    def scaled(q: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = _Attention.factor(q)
        return q * f, k.transpose(1, 2) * f


def attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """softmax(qᵀk / sqrt(c)) applied to v, for q, k, v of shape (batch·heads, c, positions); computed in float32."""
    out = _Attention.apply(q.transpose(1, 2).float(), k.transpose(1, 2).float(), v.transpose(1, 2).float())
    return out.transpose(1, 2).to(v.dtype)
