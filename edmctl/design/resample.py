"""Geometric resampling of the augmentation pipe as ADA does it (Karras et al. 2020, "Training GANs with Limited
Data", App. B.2), which EDM keeps (`training/augment.py`): pad the image by reflection, upsample it 2× with the
low-pass filter h of the sym6 wavelet, read the 2× image bilinearly at G⁻¹ of each output point (on a 2× grid),
and low-pass filter and subsample back by 2×. Since h is the filter of an orthogonal wavelet
(Σ_k h[k] h[k + 2l] = δ_l), upsampling then downsampling is the identity: a translation by whole pixels comes out
as the input moved, and otherwise the 2× detour keeps far more high-frequency energy than one bilinear lookup.
h is not symmetric, though: where G reverses an axis (a half turn, a quarter turn) the detour filters the image by
(h * h) instead, and moves it by up to 0.1 pixel. The augmentation pipe therefore copies pixels exactly where G maps
pixels onto pixels (`exact_sources`), and uses `warp` for every other G, as EDM does.

Coordinates are in pixels, centred on the image (x right, y down): pixel (i, j) of an H×W image is at
(j − (W−1)/2, i − (H−1)/2), the frame in which the augmentation pipe builds G⁻¹.
"""

import torch
from torch.nn.functional import grid_sample, pad

# Decomposition low-pass filter of the Daubechies symlet with 6 vanishing moments (PyWavelets `sym6.dec_lo`).
SYM6 = (0.015404109327027373, 0.0034907120842174702, -0.11799011114819057, -0.048311742585633,
        0.4910559419267466, 0.787641141030194, 0.3379294217276218, -0.07263752278646252,
        -0.021060292512300564, 0.04472490177066578, 0.0017677118642428036, -0.007800708325034148)
SUPPORT = len(SYM6) // 2  # pixels of margin that the filters of the 2× detour read beyond a sampled point


def warp(images: torch.Tensor, g_inv: torch.Tensor, margins: tuple[int, int, int, int]) -> torch.Tensor:
    """Images (N, C, H, W) resampled so that output point p reads input point G⁻¹p (g_inv (N, 3, 3)), through
    the padded (left, right, top, bottom = `margins`), 2× upsampled image; zero beyond the padding."""
    left, right, top, bottom = margins
    h = torch.tensor(SYM6, dtype=images.dtype, device=images.device)
    upsampled = upsample2x(pad(images, [left, right, top, bottom], mode="reflect"), h)
    points = _half_pixel_points(g_inv.to(images.dtype), images.shape[2], images.shape[3], left, top)
    size = torch.tensor(upsampled.shape[:1:-1], dtype=images.dtype, device=images.device)  # (2·W_pad, 2·H_pad)
    grid = (2 * points + 1) / size - 1  # upsampled-pixel index -> grid_sample's [-1, 1] (align_corners=False)
    sampled = grid_sample(upsampled, grid, mode="bilinear", padding_mode="zeros", align_corners=False)
    return downsample2x(sampled, h)


def warp_margins(g_inv: torch.Tensor, height: int, width: int) -> tuple[int, int, int, int]:
    """Reflection padding (left, right, top, bottom) that `warp` needs for the whole batch: how far G⁻¹ takes the
    output's corner pixels outside the image, plus the filters' reach, within [0, size − 1]. Shared by the batch,
    as EDM pads it, so that a warped image's border is what EDM's batch gives it."""
    cx, cy = (width - 1) / 2, (height - 1) / 2
    corners = torch.tensor([[-cx, cx, cx, -cx], [-cy, -cy, cy, cy], [1, 1, 1, 1]], dtype=g_inv.dtype,
                           device=g_inv.device)
    reach = (g_inv @ corners)[:, :2].transpose(0, 1).flatten(1)  # (xy, N·4) source points of the corners
    beyond = torch.cat([-reach, reach]).max(dim=1).values  # furthest left, up, right, down
    beyond = beyond + torch.tensor([SUPPORT - cx, SUPPORT - cy] * 2, dtype=g_inv.dtype, device=g_inv.device)
    limit = torch.tensor([width - 1, height - 1] * 2, dtype=g_inv.dtype, device=g_inv.device)
    left, top, right, bottom = beyond.clamp(min=0).minimum(limit).ceil().int().tolist()
    return left, right, top, bottom


def upsample2x(x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """2× upsampling along y and x (wavelet synthesis): out[j] = Σ_i x[i]·h[j + 5 − 2i] along each axis, so that
    out[2i] sits on x[i]; (N, C, H, W) -> (N, C, 2H, 2W). Written as the banded matrices U_H x U_Wᵀ, which a CPU
    multiplies faster than it runs a depthwise transposed convolution."""
    def synthesis(size: int) -> torch.Tensor:
        j, i = _indices(2 * size, size, h.device)
        return _banded(h, j + len(h) // 2 - 1 - 2 * i)
    return synthesis(x.shape[2]) @ x @ synthesis(x.shape[3]).T


def downsample2x(x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """Filter and subsample by 2 (wavelet analysis) the half-pixel canvas of `_half_pixel_points`:
    out[n] = Σ_k x[2n + k]·h[k] along each axis, (N, C, 2H + 2·SUPPORT − 2, ...) -> (N, C, H, W)."""
    def analysis(size: int) -> torch.Tensor:
        n, m = _indices((size - len(h)) // 2 + 1, size, h.device)
        return _banded(h, m - 2 * n)
    return analysis(x.shape[2]) @ x @ analysis(x.shape[3]).T


def _indices(rows: int, cols: int, device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    return torch.arange(rows, device=device)[:, None], torch.arange(cols, device=device)[None, :]


def _banded(h: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """The matrix of h[k] where the integer index k falls in h, else 0."""
    inside = (k >= 0) & (k < len(h))
    return torch.where(inside, h[k.clamp(0, len(h) - 1)], torch.zeros((), dtype=h.dtype, device=h.device))


def _half_pixel_points(g_inv: torch.Tensor, height: int, width: int, left: int, top: int) -> torch.Tensor:
    """Where each point of the output's half-pixel canvas reads the upsampled padded image, as (N, 2H', 2W', 2)
    (x, y) upsampled-pixel indices. Canvas point m sits at output pixel (m − SUPPORT + 1)/2: the output pixels
    and the midpoints between them, SUPPORT − 1 half pixels beyond each border for the downsampling filter.
    Input pixel i of the padded image is upsampled pixel 2i."""
    def axis(size: int) -> torch.Tensor:
        m = torch.arange(2 * size + 2 * SUPPORT - 2, dtype=g_inv.dtype, device=g_inv.device)
        return (m - (SUPPORT - 1)) / 2 - (size - 1) / 2
    y, x = torch.meshgrid(axis(height), axis(width), indexing="ij")
    centred = torch.stack([x, y, torch.ones_like(x)], dim=-1)  # (H', W', 3) output points, centred coordinates
    source = torch.einsum("nij,hwj->nhwi", g_inv[:, :2], centred)
    origin = torch.tensor([(width - 1) / 2 + left, (height - 1) / 2 + top], dtype=g_inv.dtype, device=g_inv.device)
    return 2 * (source + origin)


def exact_sources(g_inv: torch.Tensor, height: int, width: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """For the images whose G⁻¹ maps every pixel centre onto a pixel centre by a signed permutation of the axes
    (flips, quarter turns, whole-pixel shifts): (mask (N,), source row and column (N, H, W)), mirrored at the
    borders as the reflection padding of `warp` mirrors them (and again for shifts of more than size − 1 pixels,
    where EDM's padding, limited to size − 1, reads zeros; such a shift is an 8σ translation draw at 32×32)."""
    linear = g_inv[:, :2, :2]
    signed_permutation = ((linear == 0) | (linear.abs() == 1)).all(dim=(1, 2)) & (
        linear.abs().sum(dim=1) == 1).all(dim=1) & (linear.abs().sum(dim=2) == 1).all(dim=1)
    ys = torch.arange(height, dtype=g_inv.dtype, device=g_inv.device) - (height - 1) / 2
    xs = torch.arange(width, dtype=g_inv.dtype, device=g_inv.device) - (width - 1) / 2
    y, x = torch.meshgrid(ys, xs, indexing="ij")
    source = torch.einsum("nij,hwj->nhwi", g_inv[:, :2], torch.stack([x, y, torch.ones_like(x)], dim=-1))
    source = source + torch.tensor([(width - 1) / 2, (height - 1) / 2], dtype=g_inv.dtype, device=g_inv.device)
    on_grid = (source == source.round()).flatten(1).all(dim=1)
    index = source.round().long()
    return signed_permutation & on_grid, _mirror(index[..., 1], height), _mirror(index[..., 0], width)


def _mirror(index: torch.Tensor, size: int) -> torch.Tensor:
    """Index into 0..size−1 reflected at the borders without repeating the edge pixel (as `pad(mode="reflect")`)."""
    period = max(2 * size - 2, 1)
    return (size - 1) - ((size - 1) - index.remainder(period)).abs()


def gather_pixels(images: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """out[n, c, i, j] = images[n, c, rows[n, i, j], cols[n, i, j]]: an exact pixel permutation."""
    n, c, h, w = images.shape
    flat = (rows * w + cols).reshape(n, 1, h * w).expand(n, c, h * w)
    return images.reshape(n, c, h * w).gather(2, flat).reshape(n, c, h, w)

