"""Training (EDM training_loop.py): the objective assembled from a recipe, the loop with Adam, lr ramp-up,
gradient accumulation and EMA, snapshots that resume bit for bit, and DDP under torchrun.

    from edmctl.train import Trainer, run_training, train, dry_run, load_training_run
    outcome = train(recipe, init_distributed(), resume=None)   # records a `train` run (rank 0)
    denoiser = load_training_run("run12")                      # EMA weights of a run's newest snapshot
"""

from edmctl.train.checkpoint import latest_snapshot, load_snapshot, save_snapshot
from edmctl.train.distributed import Dist, init_distributed
from edmctl.train.ema import ema_beta, update_ema
from edmctl.train.loop import Trainer, run_training, time_per_kimg
from edmctl.train.model import load_training_run, training_recipe
from edmctl.train.session import Outcome, dry_run, train

__all__ = ["Dist", "Outcome", "Trainer", "dry_run", "ema_beta", "init_distributed", "latest_snapshot",
           "load_snapshot", "load_training_run", "run_training", "save_snapshot", "time_per_kimg", "train",
           "training_recipe", "update_ema"]
