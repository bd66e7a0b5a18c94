"""The paper's networks F (EDM Appendix F.2): DDPM++ and NCSN++ (`SongUNet`) and ADM (`DhariwalUNet`).

`NETWORKS` maps the recipe's `network.arch` to the class, `ARCH_DEFAULTS` holds each architecture's own
settings as EDM configures them (`None` in the recipe means these), and `build_network` checks the recipe's
`[network]` fields and builds F. The forward signature is EDM's: `net(x, noise_labels, class_labels=None,
augment_labels=None) -> F(x)`; preconditioning (`edmctl.design.precond`) wraps it.
"""

import torch

from edmctl.errors import UserError
from edmctl.networks.dhariwal_unet import DhariwalUNet
from edmctl.networks.song_unet import DECODER_TYPES, EMBEDDINGS, ENCODER_TYPES, SongUNet

NETWORKS: dict[str, type[torch.nn.Module]] = {"ddpmpp": SongUNet, "ncsnpp": SongUNet, "adm": DhariwalUNet}

_SONG_COMMON = dict(model_channels=128, channel_mult=[2, 2, 2], channel_mult_emb=4, num_blocks=4,
                    attn_resolutions=[16], decoder_type="standard")
ARCH_DEFAULTS: dict[str, dict] = {
    "ddpmpp": dict(_SONG_COMMON, channel_mult_noise=1, embedding_type="positional", encoder_type="standard",
                   resample_filter=[1, 1]),
    "ncsnpp": dict(_SONG_COMMON, channel_mult_noise=2, embedding_type="fourier", encoder_type="residual",
                   resample_filter=[1, 3, 3, 1]),
    "adm": dict(model_channels=192, channel_mult=[1, 2, 3, 4], channel_mult_emb=4, num_blocks=3,
                attn_resolutions=[32, 16, 8]),
}

_CHOICES = {"embedding_type": tuple(EMBEDDINGS), "encoder_type": ENCODER_TYPES, "decoder_type": DECODER_TYPES}
_POSITIVE_INTS = ("model_channels", "channel_mult_emb", "channel_mult_noise", "num_blocks")


def build_network(arch: str, *, img_resolution: int, in_channels: int, out_channels: int, label_dim: int = 0,
                  augment_dim: int = 0, dropout: float = 0.1, label_dropout: float = 0.0,
                  model_channels: int | None = None, channel_mult: list[int] | None = None,
                  channel_mult_emb: int | None = None, channel_mult_noise: int | None = None,
                  num_blocks: int | None = None, attn_resolutions: list[int] | None = None,
                  embedding_type: str | None = None, encoder_type: str | None = None,
                  decoder_type: str | None = None, resample_filter: list[int] | None = None) -> torch.nn.Module:
    """The network F named `arch`, with the recipe's `[network]` fields; `None` takes the architecture's default
    (`ARCH_DEFAULTS`). Raises UserError for an unknown arch, an option that does not apply to it, or a bad value.
    Weights are drawn from torch's global RNG; build under `torch.device("meta")` to count without memory."""
    if arch not in NETWORKS:
        raise UserError(f"network.arch {arch!r} is unknown; allowed: {', '.join(NETWORKS)}.")
    given = dict(model_channels=model_channels, channel_mult=channel_mult, channel_mult_emb=channel_mult_emb,
                 channel_mult_noise=channel_mult_noise, num_blocks=num_blocks, attn_resolutions=attn_resolutions,
                 embedding_type=embedding_type, encoder_type=encoder_type, decoder_type=decoder_type,
                 resample_filter=resample_filter)
    options = _with_defaults(arch, given)
    sizes = dict(img_resolution=img_resolution, in_channels=in_channels, out_channels=out_channels,
                 label_dim=label_dim, augment_dim=augment_dim)
    _check_sizes(sizes, dropout, label_dropout)
    _check_options(options, img_resolution)
    try:
        return NETWORKS[arch](**sizes, dropout=dropout, label_dropout=label_dropout, **options)
    except ValueError as e:
        raise UserError(f"network.model_channels {options['model_channels']} with channel_mult "
                        f"{options['channel_mult']} does not fit {arch}: {e}; use a multiple of 32 "
                        f"(and of 64 for adm's attention heads).") from e


def count_parameters(net: torch.nn.Module) -> int:
    """Number of trainable scalars in `net` (buffers such as resampling filters and Fourier frequencies
    excluded), as the paper's parameter counts (EDM Table 7) are given."""
    return sum(p.numel() for p in net.parameters())


def _with_defaults(arch: str, given: dict) -> dict:
    defaults = ARCH_DEFAULTS[arch]
    for field, value in given.items():
        if value is not None and field not in defaults:
            users = [name for name, d in ARCH_DEFAULTS.items() if field in d]
            raise UserError(f"network.{field} does not apply to arch {arch!r} (only to {', '.join(users)}); "
                            f"leave it out.")
    return {field: _copy(defaults[field] if given[field] is None else given[field]) for field in defaults}


def _check_sizes(sizes: dict, dropout: float, label_dropout: float) -> None:
    for field in ("img_resolution", "in_channels", "out_channels"):
        if not _is_int(sizes[field]) or sizes[field] < 1:
            raise UserError(f"network.{field} must be a positive integer, got {sizes[field]!r}.")
    for field in ("label_dim", "augment_dim"):
        if not _is_int(sizes[field]) or sizes[field] < 0:
            raise UserError(f"network.{field} must be an integer >= 0 (0 = none), got {sizes[field]!r}.")
    if not 0 <= dropout < 1:
        raise UserError(f"network.dropout must be in [0, 1), got {dropout!r}.")
    if not 0 <= label_dropout <= 1:
        raise UserError(f"network.label_dropout must be in [0, 1], got {label_dropout!r}.")


def _check_options(options: dict, img_resolution: int) -> None:
    for field in _POSITIVE_INTS:
        if field in options and (not _is_int(options[field]) or options[field] < 1):
            raise UserError(f"network.{field} must be a positive integer, got {options[field]!r}.")
    if options["model_channels"] % 4:
        raise UserError(f"network.model_channels must be a multiple of 4, got {options['model_channels']}.")
    for field, allowed in _CHOICES.items():
        if field in options and options[field] not in allowed:
            raise UserError(f"network.{field} {options[field]!r} is unknown; allowed: {', '.join(allowed)}.")
    _check_levels(options["channel_mult"], options["attn_resolutions"], img_resolution)
    if "resample_filter" in options:
        _check_filter(options["resample_filter"])


def _check_levels(channel_mult: list[int], attn_resolutions: list[int], img_resolution: int) -> None:
    """One level per channel multiplier, each halving the resolution; attention only at resolutions reached."""
    if not channel_mult or not all(_is_int(m) and m >= 1 for m in channel_mult):
        raise UserError(f"network.channel_mult must be a non-empty list of positive integers, got {channel_mult!r}.")
    levels = len(channel_mult)
    if img_resolution % 2 ** (levels - 1):
        raise UserError(f"network.channel_mult has {levels} levels, so img_resolution {img_resolution} must be "
                        f"divisible by {2 ** (levels - 1)}.")
    reached = [img_resolution >> level for level in range(levels)]
    for res in attn_resolutions:
        if res not in reached:
            raise UserError(f"network.attn_resolutions contains {res!r}, a resolution the network does not reach; "
                            f"allowed: {', '.join(map(str, reached))}.")


def _check_filter(resample_filter: list[float]) -> None:
    """An even-length FIR filter keeps 2× up/downsampling exact in size ([1,1] box, [1,3,3,1] bilinear)."""
    ok = resample_filter and len(resample_filter) % 2 == 0 and all(
        isinstance(v, (int, float)) and not isinstance(v, bool) and v > 0 for v in resample_filter)
    if not ok:
        raise UserError(f"network.resample_filter must be an even-length list of positive numbers such as [1, 1] "
                        f"or [1, 3, 3, 1], got {resample_filter!r}.")


def _copy(value):
    """Lists are copied, so that no network shares (or alters) `ARCH_DEFAULTS` or the caller's lists."""
    return list(value) if isinstance(value, (list, tuple)) else value


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)
