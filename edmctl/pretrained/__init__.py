"""Pretrained networks: NVlabs/edm pickles (`network-snapshot-*.pkl`, the published checkpoints) opened without
running their code, recognised as edmctl recipes, and recorded as registry runs of kind `import`.

`unpickle.read_pickle` (restricted unpickler) → `recognise.recognise` (recipe and weights from the pickled
constructor arguments) → `store.import_pickle` (the run, with the weights in edmctl's own format).
"""

from edmctl.pretrained.store import import_once, import_pickle, load_imported_run

__all__ = ["import_once", "import_pickle", "load_imported_run"]
