"""ADM (Dhariwal & Nichol 2021, "Diffusion Models Beat GANs on Image Synthesis"), as EDM's `DhariwalUNet`
configures it for ImageNet-64 (EDM Appendix F.2): residual blocks with adaptive group-norm scale/shift, 64
channels per attention head, and the class label added to the embedding after the noise MLP."""

import math

import torch
from torch.nn.functional import silu

from edmctl.networks.blocks import UNetBlock
from edmctl.networks.embeddings import PositionalEmbedding, dropped_class_labels
from edmctl.networks.layers import Conv2d, GroupNorm, Linear

INIT = dict(init_mode="kaiming_uniform", init_weight=math.sqrt(1 / 3), init_bias=math.sqrt(1 / 3))
INIT_ZERO = dict(init_mode="kaiming_uniform", init_weight=0, init_bias=0)


class DhariwalUNet(torch.nn.Module):
    """F(x; c_noise, class, augment) of ADM. Layer names follow EDM (`{res}x{res}_blockN`, `_in0`, `_up`)."""

    def __init__(self, img_resolution: int, in_channels: int, out_channels: int, label_dim: int = 0,
                 augment_dim: int = 0, model_channels: int = 192, channel_mult: list[int] = (1, 2, 3, 4),
                 channel_mult_emb: int = 4, num_blocks: int = 3, attn_resolutions: list[int] = (32, 16, 8),
                 dropout: float = 0.10, label_dropout: float = 0.0):
        super().__init__()
        self.label_dropout = label_dropout
        emb_channels = model_channels * channel_mult_emb
        block = dict(emb_channels=emb_channels, channels_per_head=64, dropout=dropout, init=INIT,
                     init_zero=INIT_ZERO)

        self.map_noise = PositionalEmbedding(model_channels)
        self.map_augment = Linear(augment_dim, model_channels, bias=False, **INIT_ZERO) if augment_dim else None
        self.map_layer0 = Linear(model_channels, emb_channels, **INIT)
        self.map_layer1 = Linear(emb_channels, emb_channels, **INIT)
        self.map_label = (Linear(label_dim, emb_channels, bias=False, init_mode="kaiming_normal",
                                 init_weight=math.sqrt(label_dim)) if label_dim else None)

        self.enc = torch.nn.ModuleDict()
        cout = in_channels
        for level, mult in enumerate(channel_mult):
            res = img_resolution >> level
            if level == 0:
                cin, cout = cout, model_channels * mult
                self.enc[f"{res}x{res}_conv"] = Conv2d(cin, cout, kernel=3, **INIT)
            else:
                self.enc[f"{res}x{res}_down"] = UNetBlock(cout, cout, down=True, **block)
            for idx in range(num_blocks):
                cin, cout = cout, model_channels * mult
                self.enc[f"{res}x{res}_block{idx}"] = UNetBlock(cin, cout, attention=res in attn_resolutions,
                                                                **block)
        skips = [layer.out_channels for layer in self.enc.values()]

        self.dec = torch.nn.ModuleDict()
        for level, mult in reversed(list(enumerate(channel_mult))):
            res = img_resolution >> level
            if level == len(channel_mult) - 1:
                self.dec[f"{res}x{res}_in0"] = UNetBlock(cout, cout, attention=True, **block)
                self.dec[f"{res}x{res}_in1"] = UNetBlock(cout, cout, **block)
            else:
                self.dec[f"{res}x{res}_up"] = UNetBlock(cout, cout, up=True, **block)
            for idx in range(num_blocks + 1):
                cin, cout = cout + skips.pop(), model_channels * mult
                self.dec[f"{res}x{res}_block{idx}"] = UNetBlock(cin, cout, attention=res in attn_resolutions,
                                                                **block)
        self.out_norm = GroupNorm(cout)
        self.out_conv = Conv2d(cout, out_channels, kernel=3, **INIT_ZERO)

    def embed(self, noise_labels: torch.Tensor, class_labels: torch.Tensor | None,
              augment_labels: torch.Tensor | None) -> torch.Tensor:
        """The embedding vector: MLP(noise embedding + augmentation label) + class label (dropped with
        probability label_dropout in training), then SiLU."""
        emb = self.map_noise(noise_labels)
        if self.map_augment is not None and augment_labels is not None:
            emb = emb + self.map_augment(augment_labels.to(emb.dtype))
        emb = self.map_layer1(silu(self.map_layer0(emb)))
        if self.map_label is not None:
            labels = dropped_class_labels(class_labels, emb, self.map_label.in_features, self.label_dropout,
                                          self.training)
            emb = emb + self.map_label(labels)
        return silu(emb)

    def forward(self, x: torch.Tensor, noise_labels: torch.Tensor, class_labels: torch.Tensor | None = None,
                augment_labels: torch.Tensor | None = None) -> torch.Tensor:
        emb = self.embed(noise_labels, class_labels, augment_labels)
        skips = []
        for layer in self.enc.values():
            x = layer(x, emb) if isinstance(layer, UNetBlock) else layer(x)
            skips.append(x)
        for layer in self.dec.values():
            if x.shape[1] != layer.in_channels:
                x = torch.cat([x, skips.pop()], dim=1)
            x = layer(x, emb)
        return self.out_conv.after_silu(self.out_norm(x))
