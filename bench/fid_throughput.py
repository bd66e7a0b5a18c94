"""Throughput of the whole FID pipeline (folder of PNGs -> decode -> detector -> float64 stats) divided by the
throughput of the detector alone on the same images already in memory; TorchScript test detector, CPU.

Target: >= 0.9 (decoding and accumulation hide behind the detector, in a background thread). Measured twice:
with torch on every core (decoding then competes with the detector for the same cores, so its cost shows up
in the ratio) and with torch on one core (a core left for decoding, as when the detector runs on a GPU).
"""

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from edmctl.fid import batches, compute_stats, image_folder, load_detector
from edmctl.fid.testing import save_random_conv_detector


def write_pngs(folder: Path, images: torch.Tensor) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i, image in enumerate(images):
        Image.fromarray(image.permute(1, 2, 0).numpy()).save(folder / f"{i:06d}.png")


def detector_alone(detector, images: torch.Tensor, batch: int) -> float:
    """images/s of the TorchScript module's forward on in-memory uint8 batches."""
    start = time.perf_counter()
    with torch.no_grad():
        for b in images.split(batch):
            detector.feat_model(b)
    return len(images) / (time.perf_counter() - start)


def pipeline_in_memory(detector, images: torch.Tensor, batch: int) -> float:
    """images/s of in-memory batches -> stats: the pipeline's own cost without PNG decoding."""
    return compute_stats(images.split(batch), detector).images_per_s


def whole_pipeline(detector, folder: Path, batch: int) -> float:
    """images/s of folder -> stats, as `edmctl fid ref` runs it."""
    return compute_stats(batches(image_folder(folder), batch), detector).images_per_s


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--num", type=int, default=1024)
    parser.add_argument("--resolution", type=int, default=32)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--dim", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()

    gen = torch.Generator().manual_seed(0)
    images = torch.randint(0, 256, (args.num, 3, args.resolution, args.resolution), dtype=torch.uint8, generator=gen)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "pngs"
        write_pngs(folder, images)
        detector = load_detector(str(save_random_conv_detector(Path(tmp) / "det.pt", dim=args.dim)), device="cpu")
        print(f"images: {args.num} PNGs {args.resolution}x{args.resolution}, batch {args.batch}, "
              f"RandomConvDetector dim {args.dim}, best of {args.repeats} interleaved repeats")
        for threads in sorted({torch.get_num_threads(), 1}, reverse=True):
            torch.set_num_threads(threads)
            compare_once(detector, images, folder, args, threads)


def compare_once(detector, images: torch.Tensor, folder: Path, args, threads: int) -> None:
    """Detector alone vs whole pipeline, interleaved; the median of the paired ratios and the ratio of the bests,
    both robust to other load on a shared machine (each pair runs back to back under the same load)."""
    detector_alone(detector, images[: args.batch * 2], args.batch)  # warm-up (TorchScript profiling runs)
    alone, in_memory, pipeline = [], [], []
    for _ in range(args.repeats):
        alone.append(detector_alone(detector, images, args.batch))
        in_memory.append(pipeline_in_memory(detector, images, args.batch))
        pipeline.append(whole_pipeline(detector, folder, args.batch))
    print(f"torch threads {threads}:")
    for name, rates in (("detector alone (in-memory uint8 batches)", alone),
                        ("pipeline on in-memory batches -> stats", in_memory),
                        ("whole pipeline (PNG folder -> stats)", pipeline)):
        print(f"  {name:42s} {max(rates):9.1f} img/s  (all: {np.round(rates, 1).tolist()})")
    for name, rates in (("in-memory pipeline", in_memory), ("whole pipeline", pipeline)):
        paired = np.median(np.array(rates) / np.array(alone))
        print(f"  ratio {name} / detector: median of pairs {paired:.3f}, best / best {max(rates) / max(alone):.3f}  (target >= 0.9)")


if __name__ == "__main__":
    main()
