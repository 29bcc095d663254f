"""What every command shares: reading the model and image arguments, progress bars on stderr, and the
argument groups that several commands take (the model, a feature-visualization recipe, the fit)."""

from __future__ import annotations

import argparse
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterator

from PIL import Image

from convvis_core.models import LoadedModel

FITS = ("stretch", "crop", "pad")


def image_argument(source: str) -> Image.Image:
    """An image file, or the name of a bundled sample ('chelsea')."""
    from convvis_core.images import open_image
    from convvis_core.samples import SAMPLES, load_sample

    if source in SAMPLES and not Path(source).exists():
        return load_sample(source)
    return open_image(source)


@contextmanager
def progress_bars(units: dict[str, str]) -> Iterator[Callable[[str, int, int], None]]:
    """Progress bars on stderr (done/total, time, time left), one per task named in ``units`` (task →
    unit), each shown from its first (task, done, total) callback."""
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.fields[unit]}"),
               TimeElapsedColumn(), TextColumn("left"), TimeRemainingColumn())
    with Progress(*columns, console=Console(stderr=True), transient=False) as bar:
        tasks: dict[str, int] = {}

        def report(task: str, done: int, total: int) -> None:
            if task not in tasks:
                tasks[task] = bar.add_task(task, total=total, unit=units[task])
            bar.update(tasks[task], completed=done, total=total)

        yield report


@contextmanager
def progress_bar(task: str, unit: str) -> Iterator[Callable[[int, int], None]]:
    """One progress bar fed by the core's (done, total) callbacks."""
    with progress_bars({task: unit}) as report:
        yield lambda done, total: report(task, done, total)


def output_choice(text: str) -> int | str:
    """``--output``: an index (0, 1, ...) or a head's name."""
    return int(text) if text.strip().isdigit() else text


def held_values(items: list[str] | None) -> dict[str, tuple[float, ...]]:
    """``--held NAME=v1,v2,...`` (repeatable) as {name: values}."""
    from convvis_core.errors import ConvVisError
    from convvis_core.models.heads import numbers

    held: dict[str, tuple[float, ...]] = {}
    for item in items or ():
        name, equals, text = item.partition("=")
        if not equals or not name.strip():
            raise ConvVisError(f"--held {item!r}: write NAME=v1,v2,... (an input's name, then its numbers).")
        held[name.strip()] = numbers(text, name.strip())
    return held


def load_model_argument(args: argparse.Namespace) -> LoadedModel:
    """The model named on the command line: the output ``--output`` (read as ``--output-kind``), other
    inputs held at ``--held``, read with ``--preprocessing`` and named by ``--labels``."""
    from convvis_core.labels import read_labels
    from convvis_core.models import load_model
    from convvis_core.preprocessing import MODES

    loaded = load_model(args.model, progress=lambda message: print(message, file=sys.stderr))
    loaded = loaded.with_output(getattr(args, "output", None), getattr(args, "output_kind", None))
    held = held_values(getattr(args, "held", None))
    if held:
        loaded = loaded.with_held_inputs(held, "--held")
    if args.preprocessing:
        loaded = loaded.with_preprocessing(args.preprocessing, "--preprocessing")
    if getattr(args, "labels", None):
        loaded = loaded.with_labels(read_labels(args.labels.read_bytes(), args.labels.name), args.labels.name)
    info = loaded.info
    print(f"preprocessing: {info.preprocessing} ({MODES[info.preprocessing]}): {info.preprocessing_why}", file=sys.stderr)
    say_what_is_explained(loaded)
    return loaded


def say_what_is_explained(loaded: LoadedModel) -> None:
    """On stderr, for a model with several inputs or outputs: which input and output are explained,
    and what the other inputs are held at."""
    info = loaded.info
    if len(info.outputs) > 1:
        heads = ", ".join(f"{i}: {output.name} ({output.kind})" for i, output in enumerate(info.outputs))
        print(f"output: {info.output_info.name} ({info.output_info.kind}); the model's outputs are {heads} "
              "(choose with --output)", file=sys.stderr)
    if info.held_inputs:
        image = next(item for item in info.inputs if item.is_image)
        held = "; ".join(f"{item.name} = [{', '.join(f'{value:g}' for value in item.held[:8])}"
                         f"{', …' if len(item.held) > 8 else ''}] ({item.held_from})" for item in info.held_inputs)
        print(f"input explained: {image.name} {'×'.join(str(side) for side in image.shape)}; held: {held} "
              "(set with --held NAME=v1,v2,...)", file=sys.stderr)


def add_fit(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--fit", choices=FITS, default="stretch", help="how to bring the image to the model's input size")


@dataclass(frozen=True)
class Parents:
    """Argument groups shared by commands (argparse parents)."""

    pixels: argparse.ArgumentParser  # the model and how its pixels are scaled
    head: argparse.ArgumentParser  # which output of a model with several, and how it is read
    model: argparse.ArgumentParser  # the model, its pixels, its head, its class names and held inputs
    recipe: argparse.ArgumentParser  # changes to a feature-visualization preset


def parents() -> Parents:
    from convvis_core.preprocessing import MODES

    pixels = argparse.ArgumentParser(add_help=False)
    pixels.add_argument("model", help="registry name (see `models`) or a .keras/.h5 file")
    pixels.add_argument("--preprocessing", choices=list(MODES),
                        help="how the model's pixels are scaled (default: inferred from the model; see `layers`): "
                             + "; ".join(f"{mode}: {text}" for mode, text in MODES.items()))
    head = argparse.ArgumentParser(add_help=False)
    head.add_argument("--output", type=output_choice, metavar="NAME_OR_INDEX",
                      help="which output (head) of a model with several to use, by its layer name or index "
                           "(default: the first; `predict` lists them all, and an unknown one is refused with the list)")
    head.add_argument("--output-kind", choices=("classes", "values"),
                      help="read a linear vector output as class scores or as values (a regression, an embedding); "
                           "default: inferred from its head")
    model = argparse.ArgumentParser(add_help=False, parents=[pixels, head])  # and class names, where they are shown
    model.add_argument("--labels", type=Path, help="class names, one per line (.txt) or a .json list or "
                                                   "class_indices dict, for a model file's outputs")
    model.add_argument("--held", action="append", metavar="NAME=v1,v2,...",
                       help="the value of an input besides the image (repeatable; default: zeros)")
    recipe = argparse.ArgumentParser(add_help=False)  # changes to a feature-visualization preset
    recipe.add_argument("--steps", type=int, help="optimization steps (default: the preset's)")
    recipe.add_argument("--size", type=int, help="image side in pixels (default: the preset's)")
    return Parents(pixels, head, model, recipe)
