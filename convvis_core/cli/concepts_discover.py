"""`concepts craft` and `concepts groups`: a target's concepts (CRAFT) and one image's neuron groups, as a
PNG sheet, a CSV of scores and a table on the terminal. ``add_craft_parser`` and ``add_groups_parser``
attach them to the ``concepts`` group of commands."""

from __future__ import annotations

import argparse
from pathlib import Path

from convvis_core.cli.cam import add_target_arguments, cam_target
from convvis_core.cli.common import Parents, add_fit, image_argument, load_model_argument, progress_bar

DEFAULT_IMAGES = 50  # images read from a folder, .zip or dataset when --count is not given


def images_argument(sources: list[str], count: int):
    """The target's images: each source an image file or sample name, or a folder, .zip or built-in dataset
    of which the first ``count`` images are read."""
    from PIL import Image

    from convvis_core.datasets.catalog import builtin_names, open_dataset

    images = []
    for source in sources:
        path = Path(source)
        if path.is_dir() or path.suffix.lower() == ".zip" or (source in builtin_names() and not path.exists()):
            dataset = open_dataset(source)
            images += [Image.fromarray(dataset.image(index)) for index in range(min(count, len(dataset)))]
        else:
            images.append(image_argument(source))
    return images


def print_table(summary: str, rows: list[dict]) -> None:
    """A line of summary, then rows of one shape as a rich table on stdout, numbers to four significant digits."""
    from rich.console import Console
    from rich.table import Table

    print(summary)
    table = Table()
    for column in rows[0]:
        table.add_column(column, justify="right" if isinstance(rows[0][column], (int, float)) else "left")
    for row in rows:
        table.add_row(*(f"{value:.4g}" if isinstance(value, float) else str(value) for value in row.values()))
    Console(width=160).print(table)


def cmd_craft(args: argparse.Namespace) -> None:
    from convvis_core.concepts.craft import concept_maps, craft_concepts
    from convvis_core.images import as_model_sees_it
    from convvis_core.presentation.concept_sheets import craft_sheet
    from convvis_core.presentation.tables import write_csv

    loaded = load_model_argument(args)
    images = images_argument(args.images, args.count)
    target = cam_target(args, loaded, images[0]) if images else None
    with progress_bar("CRAFT", "crops and images") as report:
        found = craft_concepts(loaded, images, target, args.layer, args.k, args.crops, args.crop_fraction,
                               args.importance, args.designs, args.seed, args.fit, progress=report)
    shown = None if args.map is None else image_argument(args.map)
    names = loaded.info.output_info.class_names
    sheet = (craft_sheet(found, class_names=names) if shown is None else
             craft_sheet(found, image=as_model_sees_it(shown, loaded.info, args.fit),
                         maps=concept_maps(loaded, shown, found, args.fit), class_names=names))
    sheet.save(args.out, format="PNG")
    print_table(f"{found.count} concepts of {found.target.describe(names)} at "
                f"{found.layer} from {len(found.boxes)} crops of {len(found.images)} image(s), NMF error "
                f"{found.error:.1%}; {found.cost()}", found.rows())
    print(f"wrote {args.out} and {write_csv(found.rows(), args.csv)}")


def cmd_groups(args: argparse.Namespace) -> None:
    from convvis_core.concepts.groups import neuron_groups
    from convvis_core.presentation.concept_sheets import groups_sheet
    from convvis_core.presentation.tables import write_csv

    loaded = load_model_argument(args)
    image = image_argument(args.image)
    found = neuron_groups(loaded, image, cam_target(args, loaded, image), args.layer, args.k, args.seed, args.fit)
    names = loaded.info.output_info.class_names
    groups_sheet(found, names).save(args.out, format="PNG")
    print_table(f"{found.count} neuron groups of {found.layer} on the image, NMF error {found.error:.1%}; contribution "
                f"to {found.target.describe(names)}: gradient × activation of each "
                f"group's share (the layer's in all: {found.total:+.4g})", found.rows())
    print(f"wrote {args.out} and {write_csv(found.rows(), args.csv)}")


def add_craft_parser(subparsers, parents: Parents) -> argparse.ArgumentParser:
    """``craft``: a target's concepts found in crops of its images, ranked by importance."""
    from convvis_core.concepts.craft import IMPORTANCES

    craft = subparsers.add_parser("craft", parents=[parents.model],
                                  help="discover a target's concepts (CRAFT): NMF of its images' crops at a layer, "
                                       "each concept's importance, its top crops and where it lies in an image")
    craft.add_argument("images", nargs="+", help="the target's images: image files or sample names, or a folder, .zip "
                                                 "or built-in dataset (one image: its own crops)")
    craft.add_argument("--count", type=int, default=DEFAULT_IMAGES,
                       help=f"images read from each folder, .zip or dataset (default {DEFAULT_IMAGES})")
    add_target_arguments(craft)
    craft.add_argument("--layer", help="layer path (default: the last layer with a map larger than 1×1)")
    craft.add_argument("-k", type=int, default=10, help="concepts to find (default 10)")
    craft.add_argument("--crops", type=int, default=200, help="random crops of the images (default 200)")
    craft.add_argument("--crop-fraction", type=float, default=0.35,
                       help="a crop's side as a fraction of the image's (default 0.35)")
    craft.add_argument("--importance", choices=list(IMPORTANCES), default="gradient",
                       help="gradient: gradient × coefficient (fast, one backward pass per image); sobol: Sobol total "
                            "indices (designs × (k + 2) runs of the network after the layer per image)")
    craft.add_argument("--designs", type=int, default=32, help="sobol: QMC designs per image (default 32)")
    craft.add_argument("--seed", type=int, default=0, help="crops and factorization seed (default 0)")
    craft.add_argument("--map", metavar="IMAGE",
                       help="draw where each concept lies in this image (file or sample name)")
    add_fit(craft)
    craft.add_argument("--out", default="craft.png", help="PNG sheet to write (default craft.png)")
    craft.add_argument("--csv", default="craft.csv", help="CSV of the concepts' scores (default craft.csv)")
    craft.set_defaults(run=cmd_craft)
    return craft


def add_groups_parser(subparsers, parents: Parents) -> argparse.ArgumentParser:
    """``groups``: one image's channels at a layer in groups that fire together (NMF)."""
    groups = subparsers.add_parser("groups", parents=[parents.model],
                                   help="neuron groups on one image: NMF of a layer's activations into k groups, each "
                                        "with its map, its contribution to the target and its strongest channels")
    groups.add_argument("image", help="image file, or a sample name such as 'chelsea'")
    add_target_arguments(groups)
    groups.add_argument("--layer", help="layer path (default: the last layer with a map larger than 1×1)")
    groups.add_argument("-k", type=int, default=6, help="groups to find (default 6)")
    groups.add_argument("--seed", type=int, default=0, help="factorization seed (default 0)")
    add_fit(groups)
    groups.add_argument("--out", default="groups.png", help="PNG sheet to write (default groups.png)")
    groups.add_argument("--csv", default="groups.csv", help="CSV of the groups (default groups.csv)")
    groups.set_defaults(run=cmd_groups)
    return groups
