"""Command line on the same core functions the pages use: ``python -m convvis_core --help``."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def _image(source: str):
    from convvis_core.images import open_image
    from convvis_core.samples import SAMPLES, load_sample

    if source in SAMPLES and not Path(source).exists():
        return load_sample(source)
    return open_image(source)


def cmd_models(args: argparse.Namespace) -> None:
    from convvis_core.models import DEFAULT_MODEL, MODELS

    for key, source in MODELS.items():
        info = source.info
        where = "offline" if info.offline else "needs download"
        marker = " (default)" if key == DEFAULT_MODEL else ""
        print(f"{key:<20} {info.input_size[0]}×{info.input_size[1]}×{info.channels}  {where:<14} "
              f"{info.display_name}{marker}: {info.description}")


def cmd_layers(args: argparse.Namespace) -> None:
    from convvis_core.layers import spatial_layers
    from convvis_core.models import load_model

    loaded = load_model(args.model, progress=lambda message: print(message, file=sys.stderr))
    for layer in spatial_layers(loaded.model):
        print(f"{layer.path:<45} {layer.kind:<22} {layer.shape_text}")


def cmd_predict(args: argparse.Namespace) -> None:
    from convvis_core.models import load_model
    from convvis_core.predictions import top_k

    loaded = load_model(args.model, progress=lambda message: print(message, file=sys.stderr))
    for prediction in top_k(loaded, _image(args.image), k=args.top, fit=args.fit):
        print(f"{prediction.rank}. {prediction.class_name:<30} {prediction.probability:.4f}  "
              f"(class {prediction.class_index})")


def cmd_filters(args: argparse.Namespace) -> None:
    from convvis_core.featureviz import PRESETS, filter_grid, visualize_filters
    from convvis_core.featureviz.selection import parse_filters
    from convvis_core.layers import find_layer
    from convvis_core.models import load_model

    loaded = load_model(args.model, progress=lambda message: print(message, file=sys.stderr))
    settings = PRESETS[args.preset]
    changes = {name: value for name, value in (("steps", args.steps), ("size", args.size), ("seed", args.seed))
               if value is not None}
    settings = settings.replace(**changes)
    filters = parse_filters(args.filters, find_layer(loaded.model, args.layer).channels)

    def report(done: int, total: int) -> None:
        print(f"\r{done}/{total} steps", end="", file=sys.stderr, flush=True)

    results = visualize_filters(loaded, args.layer, filters, settings, progress=report)
    print(file=sys.stderr)
    filter_grid(results).save(args.out)
    print(f"wrote {args.out}")
    for result in results:
        state = "dead (never activated)" if result.dead else f"{result.start_activation:.3f} -> {result.final_activation:.3f}"
        print(f"filter {result.filter_index:>4}: {state}{'  (cached)' if result.from_cache else ''}")


def build_parser() -> argparse.ArgumentParser:
    from convvis_core.featureviz.presets import PRESETS

    parser = argparse.ArgumentParser(prog="python -m convvis_core", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("models", help="list the models ConvVis knows by name").set_defaults(run=cmd_models)
    layers = commands.add_parser("layers", help="list a model's spatial (4-D) layers")
    layers.add_argument("model", help="registry name (see `models`) or a .keras/.h5 file")
    layers.set_defaults(run=cmd_layers)
    predict = commands.add_parser("predict", help="top-k classes of an image")
    predict.add_argument("model", help="registry name or a .keras/.h5 file")
    predict.add_argument("image", help="image file, or a sample name such as 'chelsea'")
    predict.add_argument("--top", type=int, default=5, help="how many classes (default 5)")
    predict.add_argument("--fit", choices=("stretch", "crop", "pad"), default="stretch",
                         help="how to bring the image to the model's input size")
    predict.set_defaults(run=cmd_predict)
    filters = commands.add_parser("filters", help="feature visualization of filters as a PNG grid")
    filters.add_argument("model", help="registry name or a .keras/.h5 file")
    filters.add_argument("layer", help="layer path (see `layers`)")
    filters.add_argument("--filters", default="0-15", help="indices and ranges, e.g. 0-15,32 (default 0-15)")
    filters.add_argument("--preset", default="Lucid", choices=list(PRESETS))
    filters.add_argument("--steps", type=int, help="optimization steps (default: the preset's)")
    filters.add_argument("--size", type=int, help="image side in pixels (default: the preset's)")
    filters.add_argument("--seed", type=int, help="random seed (default 0)")
    filters.add_argument("--out", required=True, help="PNG file to write")
    filters.set_defaults(run=cmd_filters)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from convvis_core.errors import ConvVisError

    try:
        args.run(args)
    except ConvVisError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    return 0
