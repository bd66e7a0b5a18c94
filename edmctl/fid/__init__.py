"""FID the way the EDM paper measured it (clean-fid, TF-compatible Inception), with its protocol recorded.

One concern per module: `clean` (clean-fid's `cleanfid.fid`, imported on first use: it needs torchvision),
`weights` (Inception file), `preprocess` (clean-fid's per-mode resize), `detectors` (table `DETECTORS` +
TorchScript), `stats` (float64 mu/sigma, npz), `distance` (FID, KID), `sources` (folders, zips), `pipeline`
(batches -> stats -> FID, seed blocks).
"""

from edmctl.fid.detectors import DETECTORS, Detector, load_detector
from edmctl.fid.distance import frechet_distance, kernel_distance
from edmctl.fid.pipeline import FidResult, Measured, best, compare, compute_stats, measure_blocks, seed_blocks
from edmctl.fid.preprocess import PROTOCOLS
from edmctl.fid.sources import ImageList, batches, dataset_images, image_folder, image_zip, open_images, take
from edmctl.fid.stats import Stats, check_compatible, load_stats, save_stats

__all__ = [
    "DETECTORS", "PROTOCOLS", "Detector", "FidResult", "ImageList", "Measured", "Stats", "batches", "best",
    "check_compatible", "compare", "dataset_images", "compute_stats", "frechet_distance", "image_folder", "image_zip",
    "kernel_distance", "load_detector", "load_stats", "measure_blocks", "open_images", "save_stats",
    "seed_blocks", "take",
]
