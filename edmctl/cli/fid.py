"""`edmctl fid`: reference statistics of a dataset (`fid ref`) and FID of a training run, folder or zip
(`fid TARGET`).

`edmctl fid TARGET ...` is shorthand for `edmctl fid measure TARGET ...`. Commands parse, check every input,
then call the `edmctl.fid` library; a measured value is recorded in the registry as a `fid` run.
"""

import re
import sys
from pathlib import Path
from typing import Annotated

import typer
from typer.core import TyperGroup

from edmctl.cli.common import JsonOpt, SetOpt, emit, out, print_files, print_warning, progress_bar
from edmctl.cli.sample import sampler_flag, sampler_overrides
from edmctl.errors import UserError

ProtocolOpt = Annotated[str, typer.Option("--protocol", help="edm: TF-compatible Inception FID as in the paper (clean-fid legacy_tensorflow); clean: clean-fid's clean mode.")]
DETECTOR_IS_CODE = "A .pt detector is code (TorchScript runs with your rights): use only files you trust."
DetectorOpt = Annotated[str, typer.Option("--detector", help="inception, pixels, or the path of a TorchScript .pt mapping "
                                          f"uint8 NCHW images to features. {DETECTOR_IS_CODE}")]
BatchOpt = Annotated[int, typer.Option("--batch", min=1, help="Images per detector batch.")]
DeviceOpt = Annotated[str | None, typer.Option("--device", help="torch device for the detector (default: cuda when available, else cpu).")]


class _MeasureByDefault(TyperGroup):
    """A group whose unknown first word is a TARGET: `fid DIR ...` runs `fid measure DIR ...`."""

    def parse_args(self, ctx, args):
        if args and args[0] not in self.commands and args[0] not in ("--help", "-h"):
            args = ["measure", *args]
        return super().parse_args(ctx, args)


def _device(device: str | None) -> str:
    """`--device`, checked against this machine (default: cuda when available, else cpu)."""
    import torch

    if device is None:
        return "cuda" if torch.cuda.is_available() else "cpu"
    try:
        parsed = torch.device(device)
    except (RuntimeError, ValueError):
        raise UserError(f"--device {device!r} is not a device; use cpu, cuda or cuda:N.") from None
    if parsed.type not in ("cpu", "cuda"):
        raise UserError(f"--device {device!r}: the detector runs on cpu or cuda[:N].")
    count = torch.cuda.device_count() if parsed.type == "cuda" else 0
    if parsed.type == "cuda" and (parsed.index or 0) >= count:
        have = f"CUDA devices 0..{count - 1}" if count else "no CUDA device"
        raise UserError(f"--device {device!r}: this machine has {have}; use cpu{' or cuda:0' if count else ''}.")
    return device


def _recipe_hash(recipe: dict) -> str:
    import hashlib
    import json

    return hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()


def ref(
    data: Annotated[str, typer.Argument(help="Dataset: a folder or .zip of images, or any source training reads (digits, .npz).")],
    out_path: Annotated[Path, typer.Option("--out", help="Where to write the statistics (.npz with mu, sigma).")],
    detector: DetectorOpt = "inception",
    protocol: ProtocolOpt = "edm",
    batch: BatchOpt = 64,
    device: DeviceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Reference statistics (mu, sigma) of a dataset, in the npz layout of EDM's reference files."""
    from edmctl.fid import batches, compute_stats, load_detector, save_stats
    from edmctl.fid.pipeline import few_images
    from edmctl.fid.runs import open_source
    from edmctl.paths import check_output

    check_output(out_path, "--out")
    images = open_source(data)
    det = load_detector(detector, protocol, _device(device))
    with progress_bar(f"stats {images.name}", images.count) as bar:
        measured = compute_stats(batches(images, batch), det, on_batch=bar.advance)
    save_stats(out_path, measured.stats)
    warning = few_images(measured.stats.dim, {"reference": measured.num_images})
    _warn([warning])
    doc = {"out": str(out_path), "num_images": measured.num_images, "feature_dim": measured.stats.dim,
           "images_per_s": measured.images_per_s, **det.describe(), "warning": warning, "files": [str(out_path)]}
    emit(doc, as_json, lambda: out.print(f"wrote {out_path}: {measured.num_images} images, {measured.stats.dim}-d "
                                         f"{det.name} features ({protocol}), {measured.images_per_s:.1f} img/s"))


def _is_run_ref(target: str) -> bool:
    """`run12`, `12` or `latest` naming a registry run (an existing path of that name is a folder)."""
    return not Path(target).exists() and re.fullmatch(r"(run)?\d+|latest", target) is not None


def measure(
    target: Annotated[str, typer.Argument(help="A training or import run (run12, 12, latest), an NVlabs network pickle (.pkl, imported on first use), or a folder or .zip of images.")],
    ref_path: Annotated[Path | None, typer.Option("--ref", help="Reference statistics (.npz with mu, sigma; EDM's files work). Default for a run: its recipe's eval.ref.")] = None,
    num: Annotated[int | None, typer.Option("--num", help="Images per measurement (default: all for a folder; eval.num for a run).")] = None,
    repeats: Annotated[int | None, typer.Option("--repeats", min=1, help="Seed blocks of --num images, the minimum reported (the paper: 3); runs only. Default: eval.repeats.")] = None,
    detector: Annotated[str | None, typer.Option("--detector", help="inception, pixels, or a TorchScript .pt mapping uint8 NCHW to features (default: eval.detector for a run, "
                                                                   f"else inception). {DETECTOR_IS_CODE}")] = None,
    protocol: Annotated[str | None, typer.Option("--protocol", help="edm: TF-compatible Inception FID as in the paper (clean-fid legacy_tensorflow); clean: clean-fid's clean mode. Default: eval.protocol for a run, else edm.")] = None,
    batch: Annotated[int | None, typer.Option("--batch", min=1, help="Images per batch (default: eval.batch for a run, else 64).")] = None,
    solver: sampler_flag("--solver", "ODE solver", str) = None,
    steps: sampler_flag("--steps", "Number of noise levels N", int) = None,
    s_churn: sampler_flag("--s-churn", "S_churn") = None,
    s_tmin: sampler_flag("--s-tmin", "S_tmin") = None,
    s_tmax: sampler_flag("--s-tmax", "S_tmax") = None,
    s_noise: sampler_flag("--s-noise", "S_noise") = None,
    overrides: SetOpt = None,
    device: DeviceOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """FID (and KID) of a training or imported run's samples, or of a folder or zip of images; recorded as a fid run."""
    target = _network_pickle_as_run(target)
    if _is_run_ref(target):
        flags = dict(solver=solver, steps=steps, s_churn=s_churn, s_tmin=s_tmin, s_tmax=s_tmax, s_noise=s_noise)
        from edmctl.recipe.load import check_flag_conflicts

        sets = sampler_overrides(flags, list(overrides or []))
        check_flag_conflicts({"eval.ref": ("--ref", ref_path), "eval.num": ("--num", num), "eval.repeats": ("--repeats", repeats),
                              "eval.detector": ("--detector", detector), "eval.protocol": ("--protocol", protocol),
                              "eval.batch": ("--batch", batch)}, sets)
        return _measure_run(target, ref_path, num, repeats, detector, protocol, batch, sets, device, as_json)
    if any(v is not None for v in (solver, steps, s_churn, s_tmin, s_tmax, s_noise)) or overrides:
        raise UserError(f"{target} is a folder or zip of fixed images; sampler flags and --set apply to training runs only.")
    if ref_path is None:
        raise UserError("--ref STATS.npz is required for a folder or zip; make it with `edmctl fid ref DATA --out STATS.npz`.")
    _measure_images(target, ref_path, num, repeats or 1, detector or "inception", protocol or "edm", batch or 64, device, as_json)


def _network_pickle_as_run(target: str) -> str:
    """An NVlabs network pickle stands for its import run (`run12`), imported first if need be."""
    if Path(target).suffix.lower() != ".pkl":
        return target
    from edmctl.pretrained import import_once

    return f"run{import_once(target)}"


def _measure_images(target, ref_path, num, repeats, detector, protocol, batch, device, as_json) -> None:
    from edmctl.fid import batches, check_compatible, compare, compute_stats, load_detector, load_stats, save_stats, take
    from edmctl.fid.weights import file_sha256
    from edmctl.fid.runs import open_source
    from edmctl.registry import open_run

    if repeats != 1:
        raise UserError(f"--repeats {repeats} needs a training run to sample fresh seed blocks from; a folder or zip holds fixed images, so measure it once.")
    images = take(open_source(target), num)
    det = load_detector(detector, protocol, _device(device))
    ref_stats = load_stats(ref_path)
    check_compatible(ref_stats, ref_path, det.describe(), det.feature_dim(images.shape()))
    recipe = {"fid": {"target": str(target), "ref": str(ref_path), "num": images.count, "batch": batch, **det.describe()}}
    ref_sha256 = file_sha256(ref_path)

    with open_run(kind="fid", recipe=recipe, recipe_hash=_recipe_hash(recipe), seeds=[], argv=sys.argv) as run:
        with progress_bar(f"FID {images.name}", images.count) as bar:
            measured = compute_stats(batches(images, batch), det, on_batch=bar.advance)
        result = compare(measured, ref_stats)
        run.log_metrics(_measured(fid=result.fid, kid=result.kid, images_per_s=result.images_per_s))
        run.update(**det.describe(), ref_sha256=ref_sha256, num_images=result.num_images, duration_s=result.seconds, target=str(target))
        files = [save_stats(Path(run.dir) / "stats.npz", measured.stats)]
        run.add_artifact(files[0], kind="stats")
        run_id = run.id

    _warn([result.warning])
    doc = {"run": run_id, **result.as_dict(), **det.describe(), "ref": str(ref_path), "ref_sha256": ref_sha256,
           "files": [str(f) for f in files]}
    emit(doc, as_json, lambda: (out.print(
        f"{_label(det)} {result.fid:.4f}  KID {_kid(result.kid)}  ({result.num_images} images, "
        f"{det.name} {protocol}, {result.images_per_s:.1f} img/s)  recorded as run {run_id}"), print_files(files)))


def _measured(**values: float | None) -> dict[str, float]:
    """The metrics to log: those measured (KID is None against reference statistics without features, as EDM's)."""
    return {key: value for key, value in values.items() if value is not None}


def _label(det) -> str:
    """FID is the Fréchet distance in Inception features; with any other detector it is an FD, named as such."""
    return "FID" if det.name == "inception" else f"FD ({Path(det.name).name})"


def _kid(kid: float | None) -> str:
    """KID (an MMD², typically 1e-4..1; negative when the sets are close: the estimate is unbiased)."""
    return "n/a" if kid is None else f"{kid:.4g}"


def _warn(warnings: list[str | None]) -> None:
    """Each distinct warning once, on stderr."""
    for warning in dict.fromkeys(w for w in warnings if w):
        print_warning(warning)


def _measure_run(target, ref_path, num, repeats, detector, protocol, batch, sets, device, as_json) -> None:
    """The paper's protocol on a training run: `repeats` seed blocks of `num` images generated from its EMA
    weights with its recipe's `[sampler]` (flags on top), features streamed without writing PNGs; images are
    quantised by `to_uint8`, exactly as `edmctl sample` writes PNGs."""
    from edmctl.fid import best
    from edmctl.fid.runs import prepare_run_fid
    from edmctl.fid.weights import file_sha256
    from edmctl.registry import open_run
    from edmctl.models.runs import model_run
    from edmctl.train.model import training_recipe

    record = model_run(target)
    recipe = training_recipe(record.id, sets)
    plan = prepare_run_fid(record.id, recipe, ref_path, num, repeats, batch, detector, protocol, _device(device))
    det, ref_path, num, repeats, blocks = plan.detector, plan.ref_path, plan.num, plan.repeats, plan.blocks
    ref_sha256 = file_sha256(ref_path)

    with open_run(kind="fid", recipe=recipe.canonical(), recipe_hash=recipe.hash(), seeds=[s for b in blocks for s in b],
                  argv=sys.argv, parent=record.id) as run:
        with progress_bar(f"FID {record.label}", num * repeats) as bar:
            results = plan.measure(on_batch=bar.advance)
        chosen, nfe = best(results), plan.nfe
        run.log_metrics(_measured(fid=chosen.fid, kid=chosen.kid, nfe=nfe, images_per_s=chosen.images_per_s,
                                  **{f"fid_{i}": r.fid for i, r in enumerate(results)}))
        run.update(**det.describe(), ref=str(ref_path), ref_sha256=ref_sha256, num_images=num, repeats=repeats, batch=plan.batch,
                   seed_blocks=[[b.start, b.stop - 1] for b in blocks], sampler=recipe.sampler.model_dump(), nfe=nfe,
                   duration_s=sum(r.seconds for r in results), measured=record.id)
        run_id = run.id

    _warn([r.warning for r in results])
    doc = {"run": run_id, "measured": record.label, "fid": chosen.fid, "kid": chosen.kid, "nfe": nfe,
           "repeats": [r.as_dict() for r in results], **det.describe(), "ref": str(ref_path), "ref_sha256": ref_sha256,
           "files": []}  # the images are streamed into the detector: nothing is written
    emit(doc, as_json, lambda: out.print(
        f"{_label(det)} {chosen.fid:.4f} (min of {', '.join(f'{r.fid:.4f}' for r in results)})  KID {_kid(chosen.kid)}  "
        f"NFE {nfe}  ({num} images x {repeats}, {det.name} {det.protocol})  recorded as run {run_id}", highlight=False))


def register(app: typer.Typer) -> None:
    """Add the `fid` group (`fid ref`, `fid measure`, and `fid TARGET` for measure)."""
    group = typer.Typer(cls=_MeasureByDefault, no_args_is_help=True,
                        help="FID as the EDM paper measured it: `fid ref DATA --out S.npz`, `fid DIR|ZIP --ref S.npz`.")
    group.command("ref")(ref)
    group.command("measure")(measure)
    app.add_typer(group, name="fid")
