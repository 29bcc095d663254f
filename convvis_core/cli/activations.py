"""`activations`: an image's feature maps, every channel of a layer as a PNG grid."""

from __future__ import annotations

import argparse
from pathlib import Path

from convvis_core.cli.common import Parents, add_fit, image_argument, load_model_argument


def cmd_activations(args: argparse.Namespace) -> None:
    from convvis_core.activations import channel_stats, default_spread, feature_maps
    from convvis_core.presentation.channel_grids import channel_grid

    loaded = load_model_argument(args)
    paths = args.layer or [default_spread(loaded.model)[0].path]
    maps_by_path = feature_maps(loaded, image_argument(args.image), paths, fit=args.fit)
    for path, maps in maps_by_path.items():
        out = args.out if len(maps_by_path) == 1 else args.out.with_stem(f"{args.out.stem}_{path.replace('/', '_')}")
        channel_grid(maps, args.normalize, args.sort).to_pil().save(out)
        stats = channel_stats(maps)
        print(f"{out}\n  {path}: {maps.shape[0]}×{maps.shape[1]}, {stats.channels} channels, "
              f"{int(stats.dead.sum())} dead, {int(stats.constant.sum())} constant")


def add_commands(commands, parents: Parents) -> None:
    activations = commands.add_parser("activations", parents=[parents.model], help="feature maps of an image, all channels of a layer as a PNG grid")
    activations.add_argument("image", help="image file, or a sample name such as 'chelsea'")
    activations.add_argument("--layer", action="append", help="layer path (repeatable; default: the first "
                             "layer of the default spread, see `layers`)")
    activations.add_argument("--normalize", choices=("standardize", "minmax", "raw"), default="standardize",
                             help="standardize: per channel, as in DLwP; minmax: per layer; raw: as computed")
    activations.add_argument("--sort", action="store_true", help="channels by mean activation, strongest first")
    add_fit(activations)
    activations.add_argument("--out", type=Path, default=Path("activations.png"),
                             help="PNG to write (with several layers, the layer is appended to the name)")
    activations.set_defaults(run=cmd_activations)
