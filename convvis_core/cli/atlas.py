"""`atlas`: precompute a whole model's pictures and top-k indexes, locally or on Ray, and export a static site;
with ``--compare B`` the same for model B on the layers both have, and the two models' comparison."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from convvis_core.cli.common import Parents, progress_bar, progress_bars, say_what_is_explained

if TYPE_CHECKING:
    from convvis_core.atlas.plan import Plan
    from convvis_core.presentation.site import Comparison


def cmd_atlas(args: argparse.Namespace) -> None:
    from convvis_core.atlas import AtlasRequest, run_atlas
    from convvis_core.atlas.plan import open_model
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
                           args.dataset, args.images, args.preprocessing, args.output, args.output_kind)
    first = open_model(request)
    jobs = [(request, first)]
    if args.compare:  # both models checked before either is computed
        from convvis_core.compare.similarity import shared_layers

        theirs = dataclasses.replace(request, model=args.compare)  # B read with A's pixels and head
        other = open_model(theirs)
        matching = shared_layers(first, other, request.layers)
        for line in matching.lines():
            print(line)
        jobs.append((dataclasses.replace(theirs, layers=tuple(b for _, b in matching.pairs)), other))
    summaries = []
    for job, loaded in jobs:
        if args.compare:
            print(f"{loaded.info.display_name}:")
        say_what_is_explained(loaded)
        with progress_bars({"filters": "filters", "images": "images"}) as report:
            summaries.append(run_atlas(job, engine, progress=report, loaded=loaded))
        print("\n".join(summaries[-1].lines()))
    plan = summaries[0].plan  # the plan the run computed: its model, layers, preset and dataset
    comparison = _compare(plan, summaries[1].plan, [a for a, _ in matching.pairs]) if args.compare else None
    if args.export:
        from convvis_core.presentation.site import export_site

        site = export_site(plan.loaded, plan.layers, args.export, plan.settings, plan.dataset, plan.count or None,
                           comparison=comparison)
        print(f"exported {site.units} unit pages of {site.layers} layers"
              + (f" for output '{site.output}'" if site.output else "") + f" ({site.pictures} with pictures, "
              f"{site.with_examples} with dataset examples)"
              + (f", {site.compared} compare pages and B's site in other/" if comparison else "")
              + f" to {site.folder}; open {site.folder / 'index.html'}")


def _compare(plan: "Plan", other: "Plan", layers: list[str]) -> "Comparison":
    """Compare the two atlases' models over A's dataset and image count (the gallery without one), on A's
    ``layers`` whose counterparts B's atlas computed; stored in the cache (by both models, the dataset, the count), so a rerun finds it."""
    from convvis_core.compare.changes import change_text
    from convvis_core.compare.similarity import compare_models
    from convvis_core.datasets.catalog import open_dataset
    from convvis_core.presentation.site import Comparison

    dataset = plan.dataset or open_dataset("gallery")
    with progress_bar("compare", "images") as report:
        similarity = compare_models(plan.loaded, other.loaded, dataset, plan.count or None, layers, progress=report)
    print(f"{plan.loaded.info.display_name} (A) vs {other.loaded.info.display_name} (B), linear CKA over "
          f"{similarity.count:,} images of {dataset.name}{' (cached)' if similarity.from_cache else ''}: "
          + ", ".join(f"{path} {change_text(similarity.layer_cka(path))}" for path in similarity.matched))
    return Comparison(other.loaded, similarity)


def add_commands(commands, parents: Parents) -> None:
    from convvis_core.featureviz.presets import PRESETS

    atlas = commands.add_parser("atlas", parents=[parents.pixels, parents.head, parents.recipe], help="precompute filters' pictures and top-k indexes into "
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
    atlas.add_argument("--compare", metavar="B", help="also the atlas of model B (registry name or .keras/.h5 file) on "
                                                      "the layers both have, and the two compared (CKA per layer, "
                                                      "most changed filters); with --export, a compare page per layer")
    atlas.set_defaults(run=cmd_atlas)
