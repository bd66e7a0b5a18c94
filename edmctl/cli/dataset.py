"""`edmctl dataset SRC DEST.zip`: convert an image folder, the CIFAR-10 python tarball, MNIST idx files or the
digits into the EDM dataset format."""

from typing import Annotated

import typer

from edmctl.cli.common import JsonOpt, emit, err, out


def dataset(
    source: Annotated[str, typer.Argument(help='"digits", an image folder or zip, cifar-10-python.tar.gz, a folder '
                                               "with MNIST's train-*-idx*-ubyte[.gz], or an .npz.")],
    dest: Annotated[str, typer.Argument(help="The EDM-format zip to write (PNGs + dataset.json).")],
    resolution: Annotated[int | None, typer.Option(help="Center-crop to square, then resize (LANCZOS) to R x R.")] = None,
    max_images: Annotated[int | None, typer.Option(help="Convert only the first N images.")] = None,
    as_json: JsonOpt = False,
) -> None:
    """Convert a dataset into the EDM format (a zip of 00000/img00000000.png ... and dataset.json)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    from edmctl.data.convert import convert_dataset

    with Progress("converting", BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), console=err.console,
                  transient=True) as bar:
        def start(total: int):
            task = bar.add_task("convert", total=total)
            return lambda n: bar.advance(task, n)

        summary = convert_dataset(source, dest, resolution=resolution, max_images=max_images, progress=start)

    def render() -> None:
        classes = f"{summary['num_classes']} classes" if summary["labelled"] else "no labels"
        origin = summary["source"] if summary["kind"] == summary["source"] else f"{summary['kind']} {summary['source']}"
        out.print(f"wrote {summary['dest']} from {origin}: {summary['images']} images of {summary['resolution']}x"
                  f"{summary['resolution']}x{summary['channels']}, {classes}")

    emit(summary, as_json, render)


def register(app: typer.Typer) -> None:
    app.command("dataset")(dataset)
