"""How `nvlabs_network_reference.npz` was made (not run by the tests): NVlabs/edm's own `training/networks.py`
(github.com/NVlabs/edm, fetched 2026-12-01), unmodified, run outside this project on CPU in float32:

    cd <NVlabs/edm checkout> && python <this file> <output.npz>

For each small config in CONFIGS: torch.manual_seed(0), build EDM's network, and save a fingerprint of every
parameter and buffer of its initial state (`<config>:keys`, and per key in `<config>:fingerprints`: sum, sum of
|x|, first, middle and last value, in float64). Then
overwrite every parameter, in state-dict order, with 0.3·N(0, 1) from torch.Generator().manual_seed(123) (so that
no layer is zero), and save `<config>:eval` (eval mode) and `<config>:train` (train mode, torch.manual_seed(7) just
before the call: dropout 0.5 masks) for the inputs of `inputs()`. `fused_up_<taps>`: EDM's Conv2d(2, 3, kernel=3,
up=True, fused_resample=True, resample_filter) from torch.manual_seed(0), its weight, bias, input and output."""

import sys

import numpy as np
import torch

from training import networks

SMALL = dict(img_resolution=8, in_channels=2, out_channels=2, label_dim=3, augment_dim=9, dropout=0.5)
CONFIGS = {
    "ddpmpp": ("SongUNet", dict(model_channels=16, channel_mult=[1, 2], num_blocks=1, attn_resolutions=[8])),
    "ncsnpp": ("SongUNet", dict(model_channels=16, channel_mult=[1, 2], num_blocks=1, attn_resolutions=[8],
                                embedding_type="fourier", channel_mult_noise=2, encoder_type="residual",
                                decoder_type="skip", resample_filter=[1, 3, 3, 1])),
    "adm": ("DhariwalUNet", dict(model_channels=32, channel_mult=[1, 2], num_blocks=1, attn_resolutions=[8, 4])),
}
FILTERS = {"2": [1, 1], "4": [1, 3, 3, 1]}


def fingerprint(tensor):
    flat = tensor.detach().double().flatten()
    return np.array([flat.sum(), flat.abs().sum(), flat[0], flat[len(flat) // 2], flat[-1]])


def inputs():
    g = torch.Generator().manual_seed(5)
    x = torch.randn(2, 2, 8, 8, generator=g)
    noise_labels = torch.randn(2, generator=g)
    class_labels = torch.eye(3)[[0, 2]]
    augment_labels = torch.randn(2, 9, generator=g) * 0.5
    return x, noise_labels, class_labels, augment_labels


def main(path):
    saved = {}
    for name, (cls, kwargs) in CONFIGS.items():
        torch.manual_seed(0)
        net = getattr(networks, cls)(**SMALL, **kwargs)
        saved[f"{name}:keys"] = np.array(list(net.state_dict()))
        saved[f"{name}:fingerprints"] = np.stack([fingerprint(v) for v in net.state_dict().values()])
        g = torch.Generator().manual_seed(123)
        with torch.no_grad():
            for p in net.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)
        saved[f"{name}:eval"] = net.eval()(*inputs()).detach().numpy()
        torch.manual_seed(7)
        saved[f"{name}:train"] = net.train()(*inputs()).detach().numpy()
    for taps, f in FILTERS.items():
        torch.manual_seed(0)
        conv = networks.Conv2d(2, 3, kernel=3, up=True, fused_resample=True, resample_filter=f)
        x = torch.randn(1, 2, 6, 6, generator=torch.Generator().manual_seed(1))
        saved[f"fused_up_{taps}:weight"] = conv.weight.detach().numpy()
        saved[f"fused_up_{taps}:bias"] = conv.bias.detach().numpy()
        saved[f"fused_up_{taps}:input"] = x.numpy()
        saved[f"fused_up_{taps}:output"] = conv(x).detach().numpy()
    np.savez_compressed(path, **saved)


if __name__ == "__main__":
    main(sys.argv[1])
