"""DDPM++ and NCSN++ (Song et al. 2021, "Score-Based Generative Modeling through SDEs"), as EDM's `SongUNet`
configures them (EDM Appendix F.2, Table 7): a U-Net of residual blocks at each resolution, self-attention at
`attn_resolutions`, and a noise embedding (+ class label, + augmentation label) that conditions every block.
DDPM++: positional embedding, standard encoder, box resampling filter [1,1].
NCSN++: Fourier embedding twice as wide, residual encoder, bilinear filter [1,3,3,1]."""

import math

import torch
from torch.nn.functional import silu

from edmctl.networks.blocks import UNetBlock
from edmctl.networks.embeddings import FourierEmbedding, PositionalEmbedding, dropped_class_labels
from edmctl.networks.layers import Conv2d, GroupNorm, Linear

EMBEDDINGS = {"positional": lambda n: PositionalEmbedding(n, endpoint=True), "fourier": FourierEmbedding}
ENCODER_TYPES = ("standard", "skip", "residual")
DECODER_TYPES = ("standard", "skip")

INIT = dict(init_mode="xavier_uniform")
INIT_ZERO = dict(init_mode="xavier_uniform", init_weight=1e-5)
INIT_ATTN = dict(init_mode="xavier_uniform", init_weight=math.sqrt(0.2))


class SongUNet(torch.nn.Module):
    """F(x; c_noise, class, augment) of DDPM++/NCSN++. Encoder blocks are named `{res}x{res}_blockN`, the
    auxiliary input pyramid `..._aux_*`, as in EDM, so the layer list reads like the architecture table."""

    def __init__(self, img_resolution: int, in_channels: int, out_channels: int, label_dim: int = 0,
                 augment_dim: int = 0, model_channels: int = 128, channel_mult: list[int] = (2, 2, 2),
                 channel_mult_emb: int = 4, num_blocks: int = 4, attn_resolutions: list[int] = (16,),
                 dropout: float = 0.10, label_dropout: float = 0.0, embedding_type: str = "positional",
                 channel_mult_noise: int = 1, encoder_type: str = "standard", decoder_type: str = "standard",
                 resample_filter: list[float] = (1, 1)):
        super().__init__()
        self.label_dropout = label_dropout
        emb_channels = model_channels * channel_mult_emb
        noise_channels = model_channels * channel_mult_noise
        block = dict(emb_channels=emb_channels, num_heads=1, dropout=dropout, skip_scale=math.sqrt(0.5), eps=1e-6,
                     resample_filter=resample_filter, resample_proj=True, adaptive_scale=False, init=INIT,
                     init_zero=INIT_ZERO, init_attn=INIT_ATTN)

        self.map_noise = EMBEDDINGS[embedding_type](noise_channels)
        self.map_label = Linear(label_dim, noise_channels, **INIT) if label_dim else None
        self.map_augment = Linear(augment_dim, noise_channels, bias=False, **INIT) if augment_dim else None
        self.map_layer0 = Linear(noise_channels, emb_channels, **INIT)
        self.map_layer1 = Linear(emb_channels, emb_channels, **INIT)

        levels = dict(img_resolution=img_resolution, model_channels=model_channels, channel_mult=channel_mult,
                      num_blocks=num_blocks, attn_resolutions=attn_resolutions, block=block)
        self.enc, skips = _encoder(in_channels=in_channels, encoder_type=encoder_type, **levels)
        self.dec = _decoder(out_channels=out_channels, skips=skips, decoder_type=decoder_type, **levels)

    def embed(self, noise_labels: torch.Tensor, class_labels: torch.Tensor | None,
              augment_labels: torch.Tensor | None) -> torch.Tensor:
        """The embedding vector: noise embedding (sin/cos swapped as in Song et al.) + √label_dim·class label
        (dropped with probability label_dropout in training) + augmentation label, through a 2-layer MLP."""
        emb = self.map_noise(noise_labels)
        emb = emb.reshape(emb.shape[0], 2, -1).flip(1).reshape(*emb.shape)
        if self.map_label is not None:
            labels = dropped_class_labels(class_labels, emb, self.map_label.in_features, self.label_dropout,
                                          self.training)
            emb = emb + self.map_label(labels * math.sqrt(self.map_label.in_features))
        if self.map_augment is not None and augment_labels is not None:
            emb = emb + self.map_augment(augment_labels.to(emb.dtype))
        return silu(self.map_layer1(silu(self.map_layer0(emb))))

    def forward(self, x: torch.Tensor, noise_labels: torch.Tensor, class_labels: torch.Tensor | None = None,
                augment_labels: torch.Tensor | None = None) -> torch.Tensor:
        emb = self.embed(noise_labels, class_labels, augment_labels)
        skips = self._encode(x, emb)
        return self._decode(skips[-1], emb, skips)

    def _encode(self, x: torch.Tensor, emb: torch.Tensor) -> list[torch.Tensor]:
        skips, aux = [], x
        for name, layer in self.enc.items():
            if "aux_down" in name:
                aux = layer(aux)
            elif "aux_skip" in name:
                x = skips[-1] = x + layer(aux)
            elif "aux_residual" in name:
                x = skips[-1] = aux = (x + layer(aux)) / math.sqrt(2)
            else:
                x = layer(x, emb) if isinstance(layer, UNetBlock) else layer(x)
                skips.append(x)
        return skips

    def _decode(self, x: torch.Tensor, emb: torch.Tensor, skips: list[torch.Tensor]) -> torch.Tensor:
        aux = h = None
        for name, layer in self.dec.items():
            if "aux_up" in name:
                aux = layer(aux)
            elif "aux_norm" in name:
                h = layer(x)
            elif "aux_conv" in name:
                h = layer.after_silu(h)
                aux = h if aux is None else h + aux
            else:
                if x.shape[1] != layer.in_channels:
                    x = torch.cat([x, skips.pop()], dim=1)
                x = layer(x, emb)
        return aux


def _encoder(img_resolution, in_channels, model_channels, channel_mult, num_blocks, attn_resolutions, block,
             encoder_type) -> tuple[torch.nn.ModuleDict, list[int]]:
    """Encoder layers, level by level: input conv (level 0) or a downsampling block, then `num_blocks` blocks;
    plus the auxiliary input pyramid of the `skip` / `residual` encoders. Returns the layers and the channel
    counts of the skip connections."""
    enc = torch.nn.ModuleDict()
    cout = caux = in_channels
    for level, mult in enumerate(channel_mult):
        res = img_resolution >> level
        if level == 0:
            cin, cout = cout, model_channels
            enc[f"{res}x{res}_conv"] = Conv2d(cin, cout, kernel=3, **INIT)
        else:
            enc[f"{res}x{res}_down"] = UNetBlock(cout, cout, down=True, **block)
            if encoder_type == "skip":
                enc[f"{res}x{res}_aux_down"] = Conv2d(caux, caux, kernel=0, down=True,
                                                      resample_filter=block["resample_filter"])
                enc[f"{res}x{res}_aux_skip"] = Conv2d(caux, cout, kernel=1, **INIT)
            if encoder_type == "residual":
                enc[f"{res}x{res}_aux_residual"] = Conv2d(caux, cout, kernel=3, down=True, fused_resample=True,
                                                          resample_filter=block["resample_filter"], **INIT)
                caux = cout
        for idx in range(num_blocks):
            cin, cout = cout, model_channels * mult
            enc[f"{res}x{res}_block{idx}"] = UNetBlock(cin, cout, attention=res in attn_resolutions, **block)
    skips = [layer.out_channels for name, layer in enc.items() if "aux" not in name]
    return enc, skips


def _decoder(img_resolution, out_channels, model_channels, channel_mult, num_blocks, attn_resolutions, block,
             skips, decoder_type) -> torch.nn.ModuleDict:
    """Decoder layers, coarsest level first: two middle blocks (the first with attention) or an upsampling
    block, then `num_blocks + 1` blocks each eating one skip connection; the output head (norm, conv) at level 0,
    or at every level for the `skip` decoder, whose outputs are upsampled and summed."""
    dec = torch.nn.ModuleDict()
    skips = list(skips)
    cout = skips[-1]
    for level, mult in reversed(list(enumerate(channel_mult))):
        res = img_resolution >> level
        if level == len(channel_mult) - 1:
            dec[f"{res}x{res}_in0"] = UNetBlock(cout, cout, attention=True, **block)
            dec[f"{res}x{res}_in1"] = UNetBlock(cout, cout, **block)
        else:
            dec[f"{res}x{res}_up"] = UNetBlock(cout, cout, up=True, **block)
        for idx in range(num_blocks + 1):
            cin, cout = cout + skips.pop(), model_channels * mult
            attn = idx == num_blocks and res in attn_resolutions
            dec[f"{res}x{res}_block{idx}"] = UNetBlock(cin, cout, attention=attn, **block)
        if decoder_type == "skip" or level == 0:
            if decoder_type == "skip" and level < len(channel_mult) - 1:
                dec[f"{res}x{res}_aux_up"] = Conv2d(out_channels, out_channels, kernel=0, up=True,
                                                    resample_filter=block["resample_filter"])
            dec[f"{res}x{res}_aux_norm"] = GroupNorm(cout, eps=1e-6)
            dec[f"{res}x{res}_aux_conv"] = Conv2d(cout, out_channels, kernel=3, **INIT_ZERO)
    return dec
