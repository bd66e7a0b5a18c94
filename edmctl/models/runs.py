"""A registry run as a model, by its kind: a training run's newest EMA snapshot, or an imported network's
weights. `RUN_MODELS` is the table; `--model runN` and `edmctl fid runN` accept exactly these kinds."""

from edmctl.errors import UserError


def load_train_run(record):
    from edmctl.train.model import load_training_run

    return load_training_run(str(record.id))


def load_import_run(record):
    from edmctl.pretrained import load_imported_run

    return load_imported_run(record)


RUN_MODELS = {"train": load_train_run, "import": load_import_run}


def model_run(ref: str | int):
    """The registry record of `ref` (`run12`, `12`, `latest`: the newest training or import run), which must be
    a run that holds a model."""
    from edmctl.train.model import training_record

    _, record = training_record(ref, kind=tuple(RUN_MODELS))
    if record.kind not in RUN_MODELS:
        raise UserError(f"{record.label} is a {record.kind} run, which holds no model; pass a {' or '.join(RUN_MODELS)} "
                        f"run (`edmctl runs --kind train`).")
    return record


def default_model_run(registry=None):
    """The model used when none is named: the newest finished training or import run that is no trial of a
    sweep or an ablation (`Registry.latest_standalone`); an explicit `runN` names any. UserError when none."""
    from edmctl.registry import Registry

    record = (registry or Registry()).latest_standalone(tuple(RUN_MODELS))
    if record is None:
        raise UserError("no finished training or import run outside sweeps and ablations in the registry; pass --model "
                        "ideal:digits or --model runN, or train one with `edmctl train RECIPE`.")
    return record


def load_run_model(ref: str | int):
    """The denoiser of run `ref`, in eval mode."""
    record = model_run(ref)
    return RUN_MODELS[record.kind](record)
