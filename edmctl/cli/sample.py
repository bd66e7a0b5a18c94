"""`edmctl sample`: images from a model with the recipe's `[sampler]` settings, one per seed, recorded as a run.

The sampler flags are aliases of recipe fields: `--steps 32` is `--set sampler.steps=32`, validated by the recipe
schema (its defaults and allowed values are the only ones). Every input is checked before the run is opened.
"""

import sys
from pathlib import Path
from typing import Annotated

import typer

from edmctl.cli.common import JsonOpt, SetOpt, emit, err, out, print_files, progress_bar
from edmctl.errors import UserError



def sampler_flag(flag: str, help: str, kind=float):
    """A sampler flag: an alias of recipe field `sampler.<flag with _>` (None: the recipe decides)."""
    return Annotated[kind | None, typer.Option(flag, help=f"{help} (recipe field sampler.{flag[2:].replace('-', '_')}).")]


def sampler_overrides(fields: dict, overrides: list[str]) -> list[str]:
    """`overrides` followed by the given sampler flags as `sampler.<field>=<TOML value>` (flags left out
    skipped, each naming its flag in errors); a flag and a `--set` of the same field is a UserError."""
    import json

    from edmctl.recipe.load import FlagOverride, check_flag_conflicts

    flag = {name: f"--{name.replace('_', '-')}" for name in fields}
    check_flag_conflicts({f"sampler.{name}": (flag[name], value) for name, value in fields.items()}, overrides)
    result = list(overrides)
    for name, value in fields.items():
        if value is not None:
            text = json.dumps(value) if isinstance(value, str) else repr(value)  # repr: 0.001, inf; TOML reads both
            result.append(FlagOverride(f"sampler.{name}={text}", f"{flag[name]} {value}"))
    return result


def resolve_model_spec(model: str | None) -> tuple[str, int | None]:
    """`--model`, or the default model (`default_model_run`, said on stderr); returns the spec, a run as
    `run:<id>`, and that run's id (None for other models). An NVlabs network pickle stands for its import run
    (imported on first use), so its recipe applies as a run's."""
    from edmctl.models.runs import default_model_run, model_run

    if model is None:
        record = default_model_run()
        err.print(f"model: {record.label}{f' ({record.name})' if record.name else ''}, the newest finished {record.kind} "
                  f"run outside sweeps and ablations; --model chooses another", highlight=False)
        return f"run:{record.id}", record.id
    if model == "latest" or (model.startswith("run") and model[3:].isdigit()):
        model = f"run:{model.removeprefix('run')}"  # --model run12 or latest: a training or import run
    if Path(model).suffix.lower() == ".pkl":
        from edmctl.pretrained import import_once

        model = f"run:{import_once(model)}"
    prefix, _, body = model.partition(":")
    if prefix != "run":
        return model, None
    run_id = model_run(body).id  # run:latest is the newest training or import run, named by its id from here on
    return f"run:{run_id}", run_id


def sample(
    model: Annotated[str | None, typer.Option("--model", help="ideal:digits, ideal:digits?std=0.2&n=200, ideal:PATH.npz[?std=S], run:ID, runN or latest (a training or import run), or an NVlabs network PATH.pkl; default: the newest finished training or import run outside sweeps and ablations.")] = None,
    seeds: Annotated[str, typer.Option("--seeds", help="Seeds in NVlabs syntax, e.g. 0-63 or 1,2,5-10; one image per seed.")] = "0-63",
    batch: Annotated[int, typer.Option("--batch", help="Images per batch (the images do not depend on it).")] = 64,
    solver: sampler_flag("--solver", "ODE solver", str) = None,
    disc: sampler_flag("--disc", "Time-step discretization {σ_i}", str) = None,
    schedule: sampler_flag("--schedule", "Noise schedule σ(t)", str) = None,
    scaling: sampler_flag("--scaling", "Signal scaling s(t)", str) = None,
    steps: sampler_flag("--steps", "Number of noise levels N", int) = None,
    rho: sampler_flag("--rho", "ρ of the edm time steps") = None,
    sigma_min: sampler_flag("--sigma-min", "Lowest noise level (default: the discretization's)") = None,
    sigma_max: sampler_flag("--sigma-max", "Highest noise level (default: the discretization's)") = None,
    s_churn: sampler_flag("--s-churn", "S_churn, stochasticity of Algorithm 2") = None,
    s_tmin: sampler_flag("--s-tmin", "S_tmin") = None,
    s_tmax: sampler_flag("--s-tmax", "S_tmax") = None,
    s_noise: sampler_flag("--s-noise", "S_noise") = None,
    alpha: sampler_flag("--alpha", "α of the generalised Heun step") = None,
    eta: sampler_flag("--eta", "η of the ancestral and SDE solvers") = None,
    order: sampler_flag("--order", "Order of the multistep solvers unipc and ipndm", int) = None,
    class_label: Annotated[int | None, typer.Option("--class", help="Class label K for a conditional model (default: drawn per seed).")] = None,
    recipe_path: Annotated[Path | None, typer.Option("--recipe", help="Recipe TOML whose [sampler] section to use (default: the paper's EDM sampler).")] = None,
    overrides: SetOpt = None,
    out_dir: Annotated[Path | None, typer.Option("--out", help="Folder for samples.npz, {seed:06d}.png and grid.png (default: the run's folder).")] = None,
    force: Annotated[bool, typer.Option("--force", help="Write into an --out folder that already holds images or samples.npz, replacing files of the same names.")] = False,
    as_json: JsonOpt = False,
) -> None:
    """Sample one image per seed; print NFE, images/s and the output folder; record the run in the registry."""
    from edmctl.models import load_model
    from edmctl.recipe import load_recipe
    from edmctl.registry import open_run
    from edmctl.sampling import parse_seeds
    from edmctl.sampling import sample as run_sample
    from edmctl.sampling import write_samples
    from edmctl.sampling.driver import check_class_label, image_shape
    from edmctl.sampling.writers import check_writable

    flags = dict(solver=solver, disc=disc, schedule=schedule, scaling=scaling, steps=steps, rho=rho, sigma_min=sigma_min,
                 sigma_max=sigma_max, s_churn=s_churn, s_tmin=s_tmin, s_tmax=s_tmax, s_noise=s_noise, alpha=alpha, eta=eta,
                 order=order)
    sets = sampler_overrides(flags, list(overrides or []))
    recipe = load_recipe(recipe_path, overrides=sets)
    seed_list = parse_seeds(seeds)
    if batch < 1:
        raise UserError(f"--batch must be at least 1, got {batch}.")
    spec, parent = resolve_model_spec(model)
    if parent is not None and recipe_path is None:  # a training or import run: its recipe's [sampler], flags on top
        from edmctl.train.model import training_recipe

        recipe = training_recipe(parent, overrides=sets)
    denoiser = load_model(spec)
    check_class_label(denoiser, class_label)
    if out_dir is not None:
        check_writable(out_dir, image_shape(denoiser)[0], force)

    with open_run(kind="sample", recipe=recipe.canonical(), recipe_hash=recipe.hash(), seeds=seed_list, argv=sys.argv, parent=parent) as run:
        target = Path(out_dir) if out_dir is not None else Path(run.dir)
        with progress_bar("sampling", len(seed_list)) as bar:
            result = run_sample(denoiser, recipe.sampler, seed_list, batch, class_label=class_label,
                                progress=lambda done, total: bar.update(completed=done))
        files = write_samples(target, result.samples, result.seeds, force)
        run.add_artifact(target / "samples.npz", kind="samples")
        run.log_metrics({"nfe": result.nfe, "images_per_s": result.images_per_second})
        run.update(nfe=result.nfe, model=spec, num_images=len(seed_list), duration_s=result.seconds, class_label=class_label, batch=batch)
        run_id = run.id

    doc = {"run": run_id, "out": str(target), "model": spec, "model_default": model is None, "nfe": result.nfe,
           "images": len(seed_list), "images_per_s": result.images_per_second, "seconds": result.seconds,
           "sampler": recipe.sampler.model_dump(), "files": [str(f) for f in files]}
    emit(doc, as_json, lambda: (out.print(
        f"model {spec}  NFE {result.nfe}  {len(seed_list)} images  {result.images_per_second:.1f} img/s  -> {target}  "
        f"(run {run_id})", highlight=False), print_files(files)))


def register(app: typer.Typer) -> None:
    """Add the `sample` command."""
    app.command("sample")(sample)
