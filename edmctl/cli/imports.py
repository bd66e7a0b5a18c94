"""`edmctl import PATH.pkl`: an NVlabs/edm network pickle as a registry run (kind `import`), read without running
its code; prints the run and what was recognised."""

import sys
from pathlib import Path
from typing import Annotated

import typer

from edmctl.cli.common import JsonOpt, emit, out, print_files, run_outputs


def import_network(
    path: Annotated[Path, typer.Argument(help="An NVlabs/edm network pickle: network-snapshot-*.pkl or a published checkpoint.")],
    name: Annotated[str | None, typer.Option("--name", help="A name for the run (default: the file name without .pkl).")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Import an NVlabs network: its weights in edmctl's safe format, the sha256 of the pickle, and its recipe."""
    from edmctl.pretrained import import_pickle

    run_id, recipe, found = import_pickle(path, name=name, argv=sys.argv)
    precond = {k: v for k, v in recipe.precond.model_dump().items() if v is not None}
    network = {k: v for k, v in recipe.network.model_dump().items() if v is not None}
    doc = {"run": f"run{run_id}", "source": str(path), "precond": precond, "network": network,
           "img_shape": list(found.img_shape), "label_dim": found.label_dim,
           "parameters": sum(t.numel() for t in found.state_dict.values()), "nvlabs": found.summary,
           "files": [str(f) for f in run_outputs(run_id)]}

    def render() -> None:
        fp16 = " (use_fp16: runs in float32 on CPU)" if found.summary["use_fp16"] else ""
        out.print(f"imported {path} as run{run_id}: {found.summary['precond']} + {found.summary['model_type']}{fp16}", highlight=False)
        out.print(f"  precond  {', '.join(f'{k}={v}' for k, v in precond.items())}", highlight=False)
        out.print(f"  network  {', '.join(f'{k}={v}' for k, v in network.items())}", highlight=False)
        out.print(f"  images   {'x'.join(map(str, found.img_shape))}, label_dim {found.label_dim}, "
                  f"{doc['parameters']:,} parameters", highlight=False)
        print_files(doc["files"])

    emit(doc, as_json, render)


def register(app: typer.Typer) -> None:
    """Add the `import` command."""
    app.command("import")(import_network)
