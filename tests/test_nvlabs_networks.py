"""edmctl's networks start and train as NVlabs/edm's: torch.manual_seed(s) and the same config give EDM's initial
weights bit for bit (EDM's draw order and arithmetic), dropout drops the same elements under the same seed, ADM has
no attention where EDM has none (under 64 channels), and the fused up-sampling convolution has EDM's shape and
values.

`data/nvlabs_network_reference.npz` was made by NVlabs/edm's own `training/networks.py`, unmodified, on CPU in
float32, outside this project: `data/nvlabs_network_reference.py` is the script (configs, seeds and inputs)."""

from pathlib import Path

import numpy as np
import pytest
import torch

from edmctl.networks import build_network
from edmctl.networks.layers import Conv2d

REFERENCE = Path(__file__).parent / "data" / "nvlabs_network_reference.npz"
SMALL = dict(img_resolution=8, in_channels=2, out_channels=2, label_dim=3, augment_dim=9, dropout=0.5)
CONFIGS = {  # the script's configs, as edmctl's recipe fields
    "ddpmpp": dict(model_channels=16, channel_mult=[1, 2], num_blocks=1, attn_resolutions=[8]),
    "ncsnpp": dict(model_channels=16, channel_mult=[1, 2], num_blocks=1, attn_resolutions=[8], decoder_type="skip"),
    "adm": dict(model_channels=32, channel_mult=[1, 2], num_blocks=1, attn_resolutions=[8, 4]),
}


@pytest.fixture(scope="module")
def reference() -> dict[str, np.ndarray]:
    return dict(np.load(REFERENCE))


def network(arch: str) -> torch.nn.Module:
    torch.manual_seed(0)
    return build_network(arch, **SMALL, **CONFIGS[arch])


def fingerprint(tensor: torch.Tensor) -> np.ndarray:
    flat = tensor.detach().double().flatten()
    return np.array([flat.sum(), flat.abs().sum(), flat[0], flat[len(flat) // 2], flat[-1]])


def inputs() -> tuple[torch.Tensor, ...]:
    g = torch.Generator().manual_seed(5)
    x = torch.randn(2, 2, 8, 8, generator=g)
    noise_labels = torch.randn(2, generator=g)
    return x, noise_labels, torch.eye(3)[[0, 2]], torch.randn(2, 9, generator=g) * 0.5


def with_reference_weights(net: torch.nn.Module) -> torch.nn.Module:
    """Every parameter, in state-dict order, 0.3·N(0, 1) from a generator seeded 123 (as the script does)."""
    g = torch.Generator().manual_seed(123)
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.3)
    return net


@pytest.mark.parametrize("arch", list(CONFIGS))
def test_same_seed_gives_edms_initial_weights_bit_for_bit(reference, arch):
    state = network(arch).state_dict()
    assert list(state) == reference[f"{arch}:keys"].tolist()
    ours = np.stack([fingerprint(v) for v in state.values()])
    assert np.array_equal(ours, reference[f"{arch}:fingerprints"])


@pytest.mark.parametrize("arch", list(CONFIGS))
def test_same_weights_and_seed_give_edms_dropout_masks(reference, arch):
    net = with_reference_weights(network(arch))
    assert np.abs(net.eval()(*inputs()).detach().numpy() - reference[f"{arch}:eval"]).max() < 1e-5
    torch.manual_seed(7)
    train = net.train()(*inputs()).detach().numpy()
    scale = np.abs(reference[f"{arch}:train"]).max()
    assert np.abs(train - reference[f"{arch}:train"]).max() < 1e-5 * scale  # float32 rounding differs by CPU type
    assert np.abs(train - reference[f"{arch}:eval"]).max() > 0.1 * scale  # dropout does act


def test_adm_has_no_attention_under_64_channels_as_edm():
    net = network("adm")
    assert not hasattr(net.enc["8x8_block0"], "qkv")  # 32 channels: EDM's 32 // 64 = 0 heads
    assert net.enc["4x4_block0"].num_heads == 1 and hasattr(net.enc["4x4_block0"], "qkv")


@pytest.mark.parametrize("taps", ["2", "4"])
def test_fused_upsampling_conv_has_edms_shape_and_values(reference, taps):
    """EDM pads the transposed filter by max(f_pad − w_pad, 0) and the conv by max(w_pad − f_pad, 0): 6×6 -> 12×12
    for a 3×3 kernel (edmctl returned 8×8 here before, 12×12 for 8×8 where EDM gives 16×16)."""
    conv = Conv2d(2, 3, kernel=3, up=True, fused_resample=True, resample_filter=[1, 1] if taps == "2" else [1, 3, 3, 1])
    with torch.no_grad():
        conv.weight.copy_(torch.from_numpy(reference[f"fused_up_{taps}:weight"]))
        conv.bias.copy_(torch.from_numpy(reference[f"fused_up_{taps}:bias"]))
    out = conv(torch.from_numpy(reference[f"fused_up_{taps}:input"]))
    expected = torch.from_numpy(reference[f"fused_up_{taps}:output"])
    assert out.shape == expected.shape == (1, 3, 12, 12)
    assert torch.allclose(out, expected, atol=1e-6)
