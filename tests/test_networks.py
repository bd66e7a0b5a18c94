"""The paper's networks (EDM Appendix F.2): sizes of the published presets, shapes, conditioning inputs,
determinism, errors, and the CPU preset's speed."""

import inspect
import math
import time

import pytest
import torch

from edmctl.errors import UserError
from edmctl.networks import ARCH_DEFAULTS, NETWORKS, build_network, count_parameters
from edmctl.networks.blocks import UNetBlock
from torch.nn.functional import silu

from edmctl.networks.layers import Conv2d, Linear, attention, drop

CIFAR10 = dict(img_resolution=32, in_channels=3, out_channels=3, augment_dim=9)
IMAGENET64 = dict(img_resolution=64, in_channels=3, out_channels=3, label_dim=1000)
TINY = dict(model_channels=16, channel_mult=[1, 2], num_blocks=1, attn_resolutions=[4], dropout=0.0)
CPU_PRESET = dict(arch="ddpmpp", img_resolution=8, in_channels=1, out_channels=1, model_channels=32,
                  channel_mult=[1, 2], num_blocks=1, attn_resolutions=[4])


def paper_size(arch: str, **sizes) -> int:
    with torch.device("meta"):
        return count_parameters(build_network(arch, **sizes))


@pytest.mark.parametrize("arch, sizes, millions, exact", [
    ("ddpmpp", CIFAR10, 55.7, 55_733_891),   # EDM Table 7: DDPM++ CIFAR-10, 55.73M
    ("ncsnpp", CIFAR10, 56.4, 56_397_827),   # NCSN++ CIFAR-10, 56.4M
    ("adm", IMAGENET64, 295.9, 295_899_267),  # ADM ImageNet-64 (class-conditional, no augmentation), 296M
])
def test_paper_presets_have_the_papers_parameter_counts(arch, sizes, millions, exact):
    count = paper_size(arch, **sizes)
    assert round(count / 1e6, 1) == millions
    assert count == exact


def randomized(net: torch.nn.Module, seed: int = 1) -> torch.nn.Module:
    """Every parameter redrawn: the zero-initialised output layers would otherwise hide the inputs' effect."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=gen) * 0.2)
    return net.eval()


def inputs(n: int, res: int, channels: int = 3, label_dim: int = 10, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, channels, res, res, generator=gen)
    c_noise = torch.randn(n, generator=gen)
    classes = torch.nn.functional.one_hot(torch.randint(label_dim, (n,), generator=gen), label_dim).float()
    return x, c_noise, classes, torch.randn(n, 9, generator=gen)


@pytest.mark.parametrize("arch, res, extra", [
    ("ddpmpp", 8, {}),
    ("ncsnpp", 16, dict(channel_mult=[1, 2, 2], attn_resolutions=[8])),
    ("ncsnpp", 16, dict(encoder_type="skip", decoder_type="skip", attn_resolutions=[8])),
    ("ddpmpp", 16, dict(embedding_type="fourier", encoder_type="residual", resample_filter=[1, 3, 3, 1],
                          attn_resolutions=[8])),
    ("adm", 8, dict(attn_resolutions=[8, 4])),
    ("adm", 16, dict(channel_mult=[1, 2, 2], attn_resolutions=[4])),
])
def test_output_has_the_input_shape_with_out_channels(arch, res, extra):
    net = build_network(arch, **{**TINY, **extra}, img_resolution=res, in_channels=3, out_channels=2, label_dim=10,
                        augment_dim=9)
    x, c_noise, classes, aug = inputs(4, res)
    assert net(x, c_noise, classes, aug).shape == (4, 2, res, res)


@pytest.mark.parametrize("arch", list(NETWORKS))
def test_class_and_augment_labels_condition_the_output(arch):
    net = randomized(build_network(arch, **TINY, img_resolution=8, in_channels=3, out_channels=3, label_dim=10,
                                   augment_dim=9))
    x, c_noise, classes, aug = inputs(4, 8)
    base = net(x, c_noise, classes, aug)
    assert not torch.allclose(base, net(x, c_noise, classes.roll(1, dims=1), aug))
    assert not torch.allclose(base, net(x, c_noise, classes, aug * 2))
    assert not torch.allclose(base, net(x, c_noise * 2, classes, aug))


@pytest.mark.parametrize("arch", list(NETWORKS))
def test_augment_labels_none_means_zeros_as_at_sampling(arch):
    net = randomized(build_network(arch, **TINY, img_resolution=8, in_channels=3, out_channels=3, augment_dim=9))
    x, c_noise, _, aug = inputs(4, 8)
    assert torch.equal(net(x, c_noise, None, None), net(x, c_noise, None, torch.zeros_like(aug)))


@pytest.mark.parametrize("arch", list(NETWORKS))
def test_label_dropout_acts_only_in_training_mode(arch):
    net = randomized(build_network(arch, **TINY, img_resolution=8, in_channels=3, out_channels=3, label_dim=10,
                                   label_dropout=1.0))
    x, c_noise, classes, _ = inputs(4, 8)
    no_label = net(x, c_noise, torch.zeros_like(classes))
    assert not torch.allclose(net(x, c_noise, classes), no_label)
    net.train()
    assert torch.equal(net(x, c_noise, classes), no_label)


@pytest.mark.parametrize("arch", list(NETWORKS))
def test_same_seed_gives_the_same_network_and_output_bits(arch):
    def run(seed):
        torch.manual_seed(seed)
        net = build_network(arch, **TINY, img_resolution=8, in_channels=3, out_channels=3).eval()
        x, c_noise, _, _ = inputs(4, 8)
        return net(x, c_noise)

    assert torch.equal(run(3), run(3))
    if arch != "adm":  # ADM's output layer starts at exactly zero, whatever the seed.
        assert not torch.equal(run(3), run(4))


def test_arch_defaults_are_builder_fields_and_none_means_default():
    fields = set(inspect.signature(build_network).parameters)
    for defaults in ARCH_DEFAULTS.values():
        assert set(defaults) <= fields
    torch.manual_seed(0)
    implicit = build_network("ncsnpp", img_resolution=8, in_channels=1, out_channels=1, channel_mult=[1],
                             model_channels=8, num_blocks=1, attn_resolutions=[8])
    torch.manual_seed(0)
    explicit = build_network("ncsnpp", img_resolution=8, in_channels=1, out_channels=1, channel_mult=[1],
                             model_channels=8, num_blocks=1, attn_resolutions=[8], embedding_type="fourier",
                             encoder_type="residual", channel_mult_noise=2, resample_filter=[1, 3, 3, 1])
    assert all(torch.equal(a, b) for a, b in zip(implicit.state_dict().values(), explicit.state_dict().values()))


@pytest.mark.parametrize("arch, bad, words", [
    ("unet", {}, ["network.arch", "ddpmpp, ncsnpp, adm"]),
    ("adm", dict(encoder_type="standard"), ["network.encoder_type", "adm"]),
    ("adm", dict(resample_filter=[1, 1]), ["network.resample_filter", "adm"]),
    ("ddpmpp", dict(embedding_type="learned"), ["network.embedding_type", "positional, fourier"]),
    ("ddpmpp", dict(encoder_type="fancy"), ["network.encoder_type", "standard, skip, residual"]),
    ("ncsnpp", dict(decoder_type="residual"), ["network.decoder_type", "standard, skip"]),
    ("ddpmpp", dict(channel_mult=[]), ["network.channel_mult", "non-empty"]),
    ("ddpmpp", dict(attn_resolutions=[2]), ["network.attn_resolutions", "8, 4"]),
    ("adm", dict(channel_mult=[1, 1, 1, 1, 1], attn_resolutions=[]), ["img_resolution 8", "divisible by 16"]),
    ("ddpmpp", dict(resample_filter=[1, 2, 1]), ["network.resample_filter", "[1, 3, 3, 1]"]),
    ("ddpmpp", dict(num_blocks=0), ["network.num_blocks", "positive"]),
    ("ddpmpp", dict(model_channels=132, channel_mult=[1], attn_resolutions=[]),
     ["network.model_channels 132", "multiple of 32"]),
    ("ddpmpp", dict(dropout=1.5), ["network.dropout", "[0, 1)"]),
])
def test_bad_network_fields_raise_user_error_naming_the_field(arch, bad, words):
    kwargs = {**TINY, **bad}
    with pytest.raises(UserError) as info:
        build_network(arch, img_resolution=8, in_channels=3, out_channels=3, **kwargs)
    for word in words:
        assert word in str(info.value)


def test_cpu_preset_trains_a_batch_of_64_in_well_under_a_second_on_two_cores():
    """Timed on ONE thread in CPU seconds of this process (a stronger claim than 1 s on 2 cores), so that other
    processes sharing the machine cannot make it flaky; best of three steps after one warm-up step."""
    torch.manual_seed(0)
    net = build_network(**CPU_PRESET, augment_dim=9).train()
    x, c_noise, _, aug = inputs(64, 8, channels=1)
    cpu_seconds = [_step_cpu_seconds(net, x, c_noise, aug) for _ in range(4)][1:]
    assert min(cpu_seconds) < 0.75


def _step_cpu_seconds(net, x, c_noise, aug) -> float:
    start = time.process_time()
    net(x, c_noise, None, aug).square().mean().backward()
    return time.process_time() - start


@pytest.mark.parametrize("mode, gain, bound, std", [
    ("xavier_uniform", 1.0, math.sqrt(6 / 600), math.sqrt(6 / 600) / math.sqrt(3)),
    ("kaiming_uniform", math.sqrt(1 / 3), math.sqrt(1 / 200), math.sqrt(1 / 200) / math.sqrt(3)),
    ("kaiming_normal", 2.0, None, 2 * math.sqrt(1 / 200)),
    ("xavier_uniform", 0.0, 0.0, 0.0),
])
def test_weights_are_drawn_as_edm_initialises_them(mode, gain, bound, std):
    torch.manual_seed(0)
    weight = Linear(200, 400, init_mode=mode, init_weight=gain).weight
    if bound is not None:
        assert weight.abs().max() <= bound
    assert abs(weight.std().item() - std) <= 0.02 * std


def out_of_place_block(block: UNetBlock, x: torch.Tensor, emb: torch.Tensor) -> torch.Tensor:
    """UNetBlock's docstring formula with every sum and scaling out of place, from the block's own layers."""
    silu = torch.nn.functional.silu
    h = torch.nn.functional.conv2d(silu(block.norm0(x)), block.conv0.weight, padding=1) \
        + block.conv0.bias.reshape(1, -1, 1, 1)
    params = (emb @ block.affine.weight.t() + block.affine.bias)[:, :, None, None]
    if block.adaptive_scale:
        scale, shift = params.chunk(2, dim=1)
        h = silu(torch.addcmul(shift, block.norm1(h), scale + 1))
    else:
        h = silu(block.norm1(h + params))
    if block.training and block.dropout:  # EDM draws the mask over the contiguous layout
        h = torch.nn.functional.dropout(h.contiguous(), block.dropout)
    h = torch.nn.functional.conv2d(h, block.conv1.weight, padding=1) + block.conv1.bias.reshape(1, -1, 1, 1)
    skip = x if block.skip is None else torch.nn.functional.conv2d(x, block.skip.weight) \
        + block.skip.bias.reshape(1, -1, 1, 1)
    h = (h + skip) * block.skip_scale
    if block.num_heads:
        a = block._attend(h)
        h = (torch.nn.functional.conv2d(a, block.proj.weight) + block.proj.bias.reshape(1, -1, 1, 1) + h) \
            * block.skip_scale
    return h


@pytest.mark.parametrize("adaptive_scale, skip_scale, channels", [(True, 1.0, (32, 32)), (False, math.sqrt(0.5),
                                                                                            (16, 32))])
@pytest.mark.parametrize("dropout", [0.0, 0.3])
@pytest.mark.parametrize("num_heads", [1, 2])
def test_blocks_give_the_out_of_place_formulas_outputs_and_gradients_bit_for_bit(adaptive_scale, skip_scale, channels,
                                                                                  dropout, num_heads):
    """In-place residuals, the recomputed activations of `_SiLUConv` and the attention function against plain
    autograd through the docstring's formulas: two blocks in training mode, so that the second one gets the
    channels-last tensor the first one's single-head attention leaves, with dropout drawn from the same seed."""
    torch.manual_seed(0)
    kwargs = dict(emb_channels=24, attention=True, num_heads=num_heads, adaptive_scale=adaptive_scale,
                  skip_scale=skip_scale, dropout=dropout, init_zero={})
    blocks = [UNetBlock(*channels, **kwargs).train(), UNetBlock(channels[1], channels[1], **kwargs).train()]
    x = torch.randn(2, channels[0], 6, 6, requires_grad=True)
    emb = torch.randn(2, 24, requires_grad=True)
    params = [p for block in blocks for p in block.parameters()]
    results = []
    for forward in (lambda block, x: block(x, emb), lambda block, x: out_of_place_block(block, x, emb)):
        torch.manual_seed(1)
        first = forward(blocks[0], x)
        assert first.is_contiguous(memory_format=torch.channels_last) == (num_heads == 1)
        out = forward(blocks[1], first)
        results.append((out, *torch.autograd.grad(out.square().sum(), [x, emb, *params])))
    assert all(torch.equal(a, b) for a, b in zip(*results))


@pytest.mark.parametrize("batch_heads, channels, positions", [(1, 8, 16), (6, 32, 64), (4, 100, 7), (2, 64, 256)])
def test_attention_is_torchs_scaled_dot_product_attention_bit_for_bit_forward_and_backward(batch_heads, channels,
                                                                                          positions):
    torch.manual_seed(0)
    inputs = [torch.randn(batch_heads, channels, positions) * 3 for _ in range(3)]
    results = []
    for fn in (attention, lambda q, k, v: torch.nn.functional.scaled_dot_product_attention(
            q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)).transpose(1, 2)):
        q, k, v = (t.clone().requires_grad_() for t in inputs)
        out = fn(q, k, v)
        results.append((out, *torch.autograd.grad(out, [q, k, v], torch.randn(out.shape,
                                                                              generator=torch.Generator().manual_seed(1)))))
    assert all(torch.equal(ours, torchs) for ours, torchs in zip(*results))


def test_attention_keeps_for_backward_only_its_inputs_and_the_weights():
    """Like EDM's AttentionOp: besides q, k and v (views of the qkv output) only W = softmax(...), one
    positions × positions matrix per head; torch's own function also keeps the scaled q and k."""
    q, k, v = (torch.randn(6, 32, 64, requires_grad=True) for _ in range(3))
    inputs = {t.untyped_storage().data_ptr() for t in (q, k, v)}

    def new_bytes(fn):
        kept = {}
        with torch.autograd.graph.saved_tensors_hooks(lambda t: kept.setdefault(t.untyped_storage().data_ptr(), t),
                                                      lambda t: t):
            fn(q, k, v)
        return sum(t.untyped_storage().nbytes() for ptr, t in kept.items() if ptr not in inputs)

    weights = 6 * 64 * 64 * 4
    assert new_bytes(attention) == weights
    assert new_bytes(lambda q, k, v: torch.nn.functional.scaled_dot_product_attention(
        q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2))) == weights + 2 * q.numel() * 4


def test_inference_on_channels_last_input_keeps_the_weight_copy_until_the_weight_changes():
    """The kept channels-last W gives torch's own result bit for bit, and a changed W (in place, as Adam and
    load_state_dict change it) is laid out again."""
    torch.manual_seed(0)
    conv = Conv2d(8, 16, kernel=3, init_bias=1)
    x = torch.randn(2, 8, 5, 5).contiguous(memory_format=torch.channels_last)

    def torchs_own():  # with autograd on, nothing is kept
        return conv(x).detach()

    for _ in range(2):
        with torch.no_grad():
            kept = conv(x), conv(x)
        assert conv._channels_last is not None
        assert torch.equal(kept[0], torchs_own()) and torch.equal(kept[1], torchs_own())
        with torch.no_grad():
            conv.weight.mul_(-0.5)



@pytest.mark.parametrize("arch", ["ddpmpp", "ncsnpp", "adm"])
def test_recomputed_activations_give_autograds_gradients_bit_for_bit(arch, monkeypatch):
    """Whole networks in training (dropout 0.3, single-head attention where the architecture has it): the
    gradients through `_SiLUConv` equal those of plain autograd through silu, dropout and conv2d."""
    sizes = {**TINY, "dropout": 0.3, **(dict(model_channels=64) if arch == "adm" else {})}  # ADM: heads of 64
    net = randomized(build_network(arch, **sizes, img_resolution=8, in_channels=3, out_channels=3,
                                   label_dim=10)).train()
    x, c_noise, classes, _ = inputs(4, 8)

    def gradients():
        torch.manual_seed(2)
        out = net(x, c_noise, classes)
        return out, *torch.autograd.grad(out.square().sum(), list(net.parameters()))

    recomputed = gradients()
    monkeypatch.setattr(Conv2d, "after_silu", lambda conv, h, p=0.0: conv(drop(silu(h), p)))
    assert all(torch.equal(a, b) for a, b in zip(recomputed, gradients()))


@pytest.mark.parametrize("arch", ["ddpmpp", "ncsnpp", "adm"])
def test_inference_overwriting_activations_gives_the_autograd_paths_outputs_bit_for_bit(arch):
    """Without autograd SiLU runs in place and convolutions keep a channels-last weight: the same bits."""
    sizes = {**TINY, **(dict(model_channels=64) if arch == "adm" else {})}
    net = randomized(build_network(arch, **sizes, img_resolution=8, in_channels=3, out_channels=3, label_dim=10))
    x, c_noise, classes, _ = inputs(4, 8)
    with torch.no_grad():
        inferred = net(x, c_noise, classes)
    assert torch.equal(inferred, net(x, c_noise, classes).detach())


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")  # torch.func's own import
def test_torch_func_transforms_and_forward_mode_derivatives_go_through_the_networks(monkeypatch):
    """torch.func.grad / jvp and forward-mode AD through DDPM++ with dropout and attention (consistency training
    takes JVPs of the denoiser) agree with the same network on plain autograd ops to float32 rounding; vmap over
    single images gives the batch's outputs."""
    net = randomized(build_network("ddpmpp", **{**TINY, "dropout": 0.3}, img_resolution=8, in_channels=3,
                                   out_channels=3)).train()
    x, c_noise, _, _ = inputs(2, 8)
    tangent = torch.randn_like(x)

    def seeded(x):
        torch.manual_seed(3)
        return net(x, c_noise)

    def derivatives():
        with torch.autograd.forward_ad.dual_level():
            forward_mode = torch.autograd.forward_ad.unpack_dual(
                seeded(torch.autograd.forward_ad.make_dual(x, tangent))).tangent
        return (torch.func.grad(lambda x: seeded(x).square().sum())(x), torch.func.jvp(seeded, (x,), (tangent,))[1],
                forward_mode)

    ours = derivatives()
    batched = torch.func.vmap(lambda x, c_noise: net.eval()(x, c_noise))(x[:, None], c_noise[:, None])
    assert torch.allclose(batched[:, 0], net(x, c_noise), rtol=1e-5, atol=1e-6)
    net.train()
    monkeypatch.setattr(Conv2d, "after_silu", lambda conv, h, p=0.0: conv(drop(silu(h), p)))
    monkeypatch.setattr("edmctl.networks.blocks.attention", lambda q, k, v: torch.nn.functional.
                        scaled_dot_product_attention(q.transpose(1, 2), k.transpose(1, 2), v.transpose(1, 2)).
                        transpose(1, 2))
    for a, b in zip(ours, derivatives()):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-6)
