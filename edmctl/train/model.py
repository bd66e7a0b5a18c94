"""A finished (or snapshotted) training run as a model to sample from: its EMA weights in the denoiser its
recipe describes (`edmctl sample --model run12`, or no `--model` for the newest finished training run)."""

from edmctl.errors import UserError


def training_record(ref: str | int, kind: str | tuple[str, ...] = "train"):
    """The registry record of training run `ref` (`run12`, `12`, `latest`: the newest run of `kind`)."""
    from edmctl.registry import Registry

    registry = Registry()
    if not registry.exists:
        raise UserError(f"no registry at {registry.home}; train a model first with `edmctl train RECIPE`.")
    return registry, registry.get(ref, kind)


def training_recipe(ref: str | int, overrides: list[str] | None = None):
    """The recipe training run `ref` was trained with, `--set` overrides applied (e.g. its `[sampler]`)."""
    from edmctl.recipe.load import apply_overrides, validate

    _, record = training_record(ref)
    if record.kind not in ("train", "import"):  # a sweep, sample or fid run records another kind of recipe
        raise UserError(f"{record.label} is a {record.kind} run, not a training or import run; pass a run listed by "
                        f"`edmctl runs --kind train`.")
    raw = dict(record.recipe)
    origin = apply_overrides(raw, list(overrides or []))
    return validate(raw, f"the recipe of {record.label}", origin)


def load_training_run(ref: str):
    """`run:12` / `run:run12`: the run's newest snapshot's EMA weights in its recipe's denoiser, in eval mode."""
    from edmctl.train.checkpoint import latest_snapshot, load_snapshot
    from edmctl.train.objective import build_denoiser, build_net

    registry, record = training_record(ref)
    path, sha256 = latest_snapshot(registry, record)
    state = load_snapshot(path, sha256)
    recipe = training_recipe(record.id)
    shape, label_dim = tuple(state["img_shape"]), int(state["label_dim"])
    net = build_net(recipe, shape, label_dim)
    net.load_state_dict(state["ema"])
    return build_denoiser(recipe, net.eval().requires_grad_(False), shape, label_dim).eval()
