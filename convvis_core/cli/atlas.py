"""`atlas`: precompute a whole model's pictures and top-k indexes, locally or on Ray, and export a static site."""

from __future__ import annotations

import argparse
from pathlib import Path

from convvis_core.cli.common import Parents, progress_bars


def cmd_atlas(args: argparse.Namespace) -> None:
    from convvis_core.atlas import AtlasRequest, run_atlas
    from convvis_core.errors import ConvVisError

    engine = None
    if args.engine == "ray":
        try:
            from convvis_core.atlas.ray_engine import RayEngine
        except ImportError as error:
            raise ConvVisError(f"The ray engine needs Ray ({error}): pip install 'ray[data]==2.60.0'.") from error
        engine = RayEngine(args.address, args.workers, args.threads)
    elif args.address or args.workers or args.threads:
        raise ConvVisError("--address, --workers and --threads are for --engine ray.")
    request = AtlasRequest(args.model, tuple(args.layers or ()), args.filters, args.preset, args.steps, args.size,
                           args.dataset, args.images, args.preprocessing)
    with progress_bars({"filters": "filters", "images": "images"}) as report:
        summary = run_atlas(request, engine, progress=report)
    print("\n".join(summary.lines()))
    if args.export:
        from convvis_core.presentation.site import export_site

        plan = summary.plan  # the plan the run computed: its model, layers, preset and dataset
        site = export_site(plan.loaded, plan.layers, args.export, plan.settings, plan.dataset, plan.count or None)
        print(f"exported {site.units} unit pages of {site.layers} layers ({site.pictures} with pictures, "
              f"{site.with_examples} with dataset examples) to {site.folder}; open {site.folder / 'index.html'}")


def add_commands(commands, parents: Parents) -> None:
    from convvis_core.featureviz.presets import PRESETS

    atlas = commands.add_parser("atlas", parents=[parents.pixels, parents.recipe], help="precompute filters' pictures and top-k indexes into "
                                "the cache the pages read (resumable; locally or on a Ray cluster)")
    atlas.add_argument("--layers", nargs="+", help="layer paths (default: every spatial layer; see `layers`)")
    atlas.add_argument("--filters", help="indices and ranges for each layer, e.g. 0-31 (default: all)")
    atlas.add_argument("--preset", default="Lucid", choices=list(PRESETS))
    atlas.add_argument("--dataset", help="also rank this dataset's images for every layer (one pass): gallery, "
                                         "mnist, fashion-mnist, or a .zip or folder of images")
    atlas.add_argument("--images", type=int, help="rank the first N images (default: all, up to the scan limit)")
    atlas.add_argument("--engine", choices=("local", "ray"), default="local",
                       help="local: this process, all cores (default); ray: Ray actors (pip install 'ray[data]')")
    atlas.add_argument("--address", help="ray: join this cluster (default: start a local Ray on this machine)")
    atlas.add_argument("--workers", type=int, help="ray: actors holding the model (default: one per GPU, else per CPU)")
    atlas.add_argument("--threads", type=int, help="ray: TensorFlow threads per worker (default: its share of the CPUs)")
    atlas.add_argument("--export", type=Path, help="then write a static site of the atlas into this folder (plain "
                                                   "HTML and PNG: opens from file://, no server needed)")
    atlas.set_defaults(run=cmd_atlas)
