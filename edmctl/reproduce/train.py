"""Reproducing a training run: re-train its recorded recipe with the same seed inside the reproduce run and
compare the final net and EMA weights bitwise with the original's last snapshot, and the final tick's loss.

Training draws σ, noise, augmentation and dropout from generators seeded by `training.seed` and the rank, so
on the same kind of device and the same number of processes the weights come out bit for bit. On another
device kind (CUDA vs CPU) the generators draw other numbers from the same seed and the kernels round
differently: the reproduction is another realisation of the same training, its weights are not comparable,
and the final loss — a mean over one tick of per-image losses — agrees only statistically, to
`LOSS_RTOL_OTHER_DEVICE`.

A resumed run (parent = the training run it continued) is reproduced from the snapshot it resumed from (its
recorded sha256 checked): the segment the run trained is re-trained, not the whole chain.
"""

from edmctl.errors import UserError
from edmctl.reproduce.checks import check, current_device_kind, device_kind, file_unchanged, values_agree

# On another device kind the final loss is the mean over one tick of another draw of σ, noise and augmentation:
# it agrees only as two estimates of the same expected loss do. 10% is a chosen bound (not measured across
# devices: no GPU was at hand), loose enough for the sampling spread of a tick's mean, tight enough that a
# recipe or code change that moves the loss (another weighting λ(σ), another p_train) shows up.
LOSS_RTOL_OTHER_DEVICE = 0.1


def newest_snapshot(registry, run_id: int):
    """The newest checkpoint artifact of run `run_id` and its path, or (None, None)."""
    snapshots = [a for a in registry.artifacts(run_id) if a.kind == "checkpoint"]
    if not snapshots:
        return None, None
    newest = max(snapshots, key=lambda a: (a.step or 0, a.id))
    return newest, registry.artifact_path(newest)


def resumed_snapshot(record, registry) -> dict | None:
    """The snapshot a resumed run started from (the one at its `resumed_from_nimg` in its parent chain), or
    None for a run trained from scratch."""
    from edmctl.train.checkpoint import load_snapshot

    start = int(record.extra.get("resumed_from_nimg") or 0)
    if record.parent_id is None or start == 0:
        return None
    current = registry.get(record.parent_id)
    while current is not None:
        for artifact in registry.artifacts(current.id):
            if artifact.kind == "checkpoint" and artifact.step == start:
                return load_snapshot(registry.artifact_path(artifact), artifact.sha256)
        current = registry.get(current.parent_id) if current.parent_id is not None else None
    raise UserError(f"{record.label} resumed at {start} images, but no run in its parent chain holds a snapshot "
                    f"of {start} images any more; it cannot be reproduced.")


def check_world_size(record, dist) -> None:
    recorded = record.world_size or 1
    if recorded != 1:
        raise UserError(f"{record.label} trained on {recorded} processes; edmctl reproduce re-trains in one process, "
                        f"and other process counts draw other per-rank random streams, so it cannot be compared.")
    if dist.world_size != recorded:
        raise UserError(f"edmctl reproduce runs in {dist.world_size} processes but {record.label} trained in {recorded}; "
                        f"run it without torchrun.")


def retrain(recipe, record, run, registry, dist):
    """Train `recipe` inside `run` (tick metrics and snapshots recorded there); the trainer and last metrics."""
    from edmctl.train.loop import run_training
    from edmctl.train.record import Recorder
    from edmctl.train.session import prepare

    trainer = prepare(recipe, dist, resumed_snapshot(record, registry), warn=lambda text: run.update(warning=text))
    run.update(world_size=dist.world_size, devices=[str(dist.device)], parameters=trainer.parameter_count)
    with Recorder(run, trainer) as recorder:
        run_training(trainer, recorder)
    run.update(nimg=trainer.nimg)
    return trainer, recorder.metrics


def weights_equal(name: str, reproduced: dict, original: dict | None) -> dict:
    """Every tensor of two state dicts equal bit for bit (on the CPU)."""
    import torch

    if original is None:
        return check(name, False, "the original snapshot could not be read")
    if reproduced.keys() != original.keys():
        return check(name, False, f"{len(reproduced)} tensors vs {len(original)} recorded, names differ")
    differing = [key for key in reproduced if not torch.equal(reproduced[key].cpu(), original[key].cpu())]
    worst = max((float((reproduced[k].cpu().double() - original[k].cpu().double()).abs().max()) for k in differing
                 if reproduced[k].shape == original[k].shape), default=0.0)
    detail = (f"{len(reproduced)} tensors equal" if not differing
              else f"{len(differing)} of {len(reproduced)} tensors differ (max |difference| {worst:.3g})")
    return check(name, not differing, detail)


def read_original(path) -> dict | None:
    from edmctl.train.checkpoint import load_snapshot

    try:
        return load_snapshot(path)
    except UserError:
        return None


def reproduce_train(record, run, registry) -> list[dict]:
    """Re-train the recorded recipe with the same seed (and starting snapshot) and compare with the original."""
    from edmctl.recipe import validate
    from edmctl.train.distributed import init_distributed

    recipe = validate(record.recipe, f"{record.label}'s recorded recipe")
    dist = init_distributed()
    check_world_size(record, dist)
    artifact, path = newest_snapshot(registry, record.id)
    if artifact is None:
        raise UserError(f"{record.label} recorded no snapshot; there are no final weights to compare with.")
    trainer, metrics = retrain(recipe, record, run, registry, dist)

    unchanged = file_unchanged(f"snapshot {path.name}", path, artifact.sha256)
    recorded_loss = registry.metrics(record.id).get("loss")
    recorded_loss = recorded_loss.value if recorded_loss else None
    if device_kind(record.devices) != current_device_kind():
        return [unchanged, values_agree("final loss (other device kind)", metrics.get("loss"), recorded_loss,
                                        LOSS_RTOL_OTHER_DEVICE)]
    original = read_original(path) if path.exists() else None
    same_nimg = check("images trained", original is not None and original["nimg"] == trainer.nimg,
                      f"{trainer.nimg} vs recorded {original['nimg'] if original else 'unreadable'}", "equal")
    return [unchanged, same_nimg,
            weights_equal("final net weights", trainer.net.state_dict(), original and original["net"]),
            weights_equal("final EMA weights", trainer.ema.state_dict(), original and original["ema"]),
            values_agree("final loss", metrics.get("loss"), recorded_loss)]
