"""Two autograd functions of the U-Nets that keep less for the backward pass than autograd through the same ops,
with autograd's results to the bit: the same forward ops, the backward formulas autograd uses (derivatives.yaml)
in its order and on tensors of the same memory layouts. Both also give forward-mode derivatives (`jvp`, for
`torch.func.jvp` and `torch.autograd.forward_ad`) and work under `torch.func` transforms (`setup_context`)."""

import math

import torch
from torch.nn.functional import conv2d, silu


class SiLUConv(torch.autograd.Function):
    """conv2d(drop_p(silu(h)), W), a k×k convolution with stride 1 and same padding, dropout's mask drawn as torch's
    dropout draws it (empty_like(x).bernoulli_(1 − p), ÷ (1 − p), x ⊙ noise) over the contiguous layout.

    Autograd through these ops keeps h (for SiLU), the mask as floats (for dropout) and the dropped activations (for
    the convolution). This keeps h and the mask as booleans and recomputes the activations in backward: the same
    numbers, so the gradients are autograd's bits. Returns (output, mask); the mask is empty when p is 0."""

    generate_vmap_rule = True

    @staticmethod
    def forward(h: torch.Tensor, weight: torch.Tensor, p: float) -> tuple[torch.Tensor, torch.Tensor]:
        x = silu(h)
        keep = torch.empty(0, dtype=torch.bool, device=h.device)
        if p:
            x = x.contiguous()
            noise = torch.empty_like(x).bernoulli_(1 - p)
            keep = noise.bool()
            x.mul_(noise.div_(1 - p))
        return conv2d(x, weight, padding=weight.shape[-1] // 2), keep

    @staticmethod
    def setup_context(ctx, inputs, output):
        h, weight, ctx.p = inputs
        ctx.mark_non_differentiable(output[1])
        ctx.save_for_backward(h, weight, output[1])
        ctx.save_for_forward(h, weight, output[1])

    @staticmethod
    def backward(ctx, grad: torch.Tensor, _):
        h, weight, keep = ctx.saved_tensors
        x, noise = SiLUConv.activations(h, keep, ctx.p)
        pad = weight.shape[-1] // 2
        grad_x, grad_w, _ = torch.ops.aten.convolution_backward(
            grad, x, weight, None, [1, 1], [pad, pad], [1, 1], False, [0, 0], 1,
            [ctx.needs_input_grad[0], ctx.needs_input_grad[1], False])
        if grad_x is not None:
            grad_x = torch.ops.aten.silu_backward(grad_x if noise is None else grad_x * noise, h)
        return grad_x, grad_w, None

    @staticmethod
    def jvp(ctx, h_t: torch.Tensor | None, weight_t: torch.Tensor | None, _):
        """d out = conv(drop(silu'(h) ⊙ dh), W) + conv(drop(silu(h)), dW), silu'(h) = σ(h)(1 + h(1 − σ(h)))."""
        h, weight, keep = ctx.saved_tensors
        x, noise = SiLUConv.activations(h, keep, ctx.p)
        pad = weight.shape[-1] // 2
        terms = []
        if h_t is not None:
            s = torch.sigmoid(h)
            x_t = h_t * s * (1 + h * (1 - s))
            terms.append(conv2d(x_t if noise is None else x_t.contiguous() * noise, weight, padding=pad))
        if weight_t is not None:
            terms.append(conv2d(x, weight_t, padding=pad))
        return sum(terms[1:], terms[0]), None

    @staticmethod
    def activations(h: torch.Tensor, keep: torch.Tensor, p: float) -> tuple[torch.Tensor, torch.Tensor | None]:
        """(drop_p(silu(h)) with the mask `keep`, the mask's factors 0 or 1/(1 − p), None without dropout)."""
        x = silu(h)
        if not p:
            return x, None
        noise = keep.to(x.dtype).div_(1 - p)
        return x.contiguous().mul_(noise), noise


class Attention(torch.autograd.Function):
    """out = softmax((q·f)(kᵀ·f)) v with f = sqrt(1/sqrt(c)), for q, k, v of shape (batch·heads, positions, c):
    the arithmetic of torch's `scaled_dot_product_attention` for 3-D inputs (its math path), without that path's
    guard for fully masked rows (three more passes over the weights; there is no mask). Autograd through the same
    ops keeps q·f and kᵀ·f as well; this keeps only q, k, v (views of the qkv convolution's output, alive anyway)
    and the weights W = softmax(...), and recomputes the two scalings, as EDM's AttentionOp keeps q, k and W.
    Returns (out, W)."""

    generate_vmap_rule = True

    @staticmethod
    def forward(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        qf, kf = Attention.scaled(q, k)
        w = torch.bmm(qf, kf).softmax(-1)
        return torch.bmm(w, v), w

    @staticmethod
    def setup_context(ctx, inputs, output):
        ctx.mark_non_differentiable(output[1])
        ctx.save_for_backward(*inputs, output[1])
        ctx.save_for_forward(*inputs, output[1])

    @staticmethod
    def backward(ctx, grad: torch.Tensor, _):
        q, k, v, w = ctx.saved_tensors
        qf, kf = Attention.scaled(q, k)
        grad_w, grad_v = grad.bmm(v.transpose(1, 2)), w.transpose(1, 2).bmm(grad)
        grad_s = torch._softmax_backward_data(grad_w, w, -1, w.dtype)
        grad_q, grad_k = grad_s.bmm(kf.transpose(1, 2)), qf.transpose(1, 2).bmm(grad_s)
        f = Attention.factor(q)
        return grad_q * f, (grad_k * f).transpose(1, 2), grad_v

    @staticmethod
    def jvp(ctx, q_t: torch.Tensor | None, k_t: torch.Tensor | None, v_t: torch.Tensor | None):
        """dS = (dq·f)(kᵀ·f) + (q·f)(dkᵀ·f), dW = W ⊙ (dS − Σ_j W ⊙ dS), d out = dW v + W dv."""
        q, k, v, w = ctx.saved_tensors
        qf, kf = Attention.scaled(q, k)
        s_t = torch.zeros_like(w)
        if q_t is not None:
            s_t = s_t + torch.bmm(Attention.scaled(q_t, k)[0], kf)
        if k_t is not None:
            s_t = s_t + torch.bmm(qf, Attention.scaled(q, k_t)[1])
        w_t = w * (s_t - (w * s_t).sum(-1, keepdim=True))
        out_t = torch.bmm(w_t, v)
        return (out_t if v_t is None else out_t + torch.bmm(w, v_t)), None

    @staticmethod
    def factor(q: torch.Tensor) -> float:
        return math.sqrt(1 / math.sqrt(q.shape[-1]))  # the square root of the scale 1/sqrt(c), applied to both

    @staticmethod
    def scaled(q: torch.Tensor, k: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = Attention.factor(q)
        return q * f, k.transpose(1, 2) * f
