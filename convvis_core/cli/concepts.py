"""`concepts`: from "what pattern" to "what it means". `concepts tcav`: does a concept (a pattern ConvVis draws, or
your images) move a class, at which layers, significantly? Each subcommand is one ``add_*`` function in
``SUBCOMMANDS``."""

from __future__ import annotations

import argparse
from pathlib import Path

from convvis_core.cli.common import Parents, image_argument, load_model_argument, progress_bar
from convvis_core.cli.concepts_discover import add_craft_parser, add_groups_parser


def colour_argument(text: str) -> tuple[int, int, int]:
    """``--colour``: a name (red, green, ...) or R,G,B."""
    from convvis_core.concepts.probes import COLOURS
    from convvis_core.errors import ConvVisError

    if text in COLOURS:
        return COLOURS[text]
    try:
        red, green, blue = (int(part) for part in text.split(","))
    except ValueError:
        raise ConvVisError(f"--colour {text!r}: a name ({', '.join(COLOURS)}) or R,G,B (0-255 each).") from None
    if not all(0 <= value <= 255 for value in (red, green, blue)):
        raise ConvVisError(f"--colour {text!r}: each of R,G,B is 0 to 255.")
    return red, green, blue


def is_dataset(spec: str) -> bool:
    """A built-in dataset's name, a folder or a .zip (else an image file or a sample name)."""
    from convvis_core.datasets.catalog import BUILTIN

    path = Path(spec).expanduser()
    return (spec in BUILTIN and not path.exists()) or path.is_dir() or path.suffix.lower() == ".zip"


def concept_argument(args: argparse.Namespace, size: tuple[int, int]):
    """The concept set: a probe pattern drawn at the model's size, or the images of a dataset, .zip or folder."""
    from convvis_core.concepts.image_sets import named_concept

    return named_concept(args.concept, args.count, size, args.seed,
                         colour_argument(args.colour) if args.colour else None, args.angle)


def images_argument(args: argparse.Namespace, size: tuple[int, int]):
    """The target's images: a dataset (those labelled ``--label`` where it has labels), or random crops of one image."""
    from convvis_core.concepts.image_sets import crops_set, dataset_set
    from convvis_core.datasets.catalog import open_dataset

    if is_dataset(args.images):
        return dataset_set(open_dataset(args.images), args.images_count, args.label)
    return crops_set(image_argument(args.images), args.images_count or args.count, f"'{Path(args.images).name}'",
                     args.seed, size)


def target_argument(args: argparse.Namespace, loaded):
    """--class (a class, or a segmentation's class over the whole image), --unit (a values output) or --filter."""
    from convvis_core.cam.targets import FilterTarget, OutputUnitTarget, check_target, indexed_target
    from convvis_core.errors import ConvVisError

    named = [option for option, value in (("--class", args.class_index), ("--unit", args.unit),
                                          ("--filter", args.filter)) if value is not None]
    if len(named) != 1:
        raise ConvVisError("Choose one target: --class N, --unit N (a values output) or --filter LAYER:N"
                           + (f"; {' and '.join(named)} were given." if named else "."))
    if args.filter is not None:
        layer, _, index = args.filter.rpartition(":")
        if not (layer and index.isdigit()):
            raise ConvVisError(f"--filter {args.filter!r}: write LAYER:N, e.g. conv_pw_8_relu:3.")
        target = FilterTarget(layer, int(index))
    elif args.unit is not None:
        target = OutputUnitTarget(args.unit)
    else:
        target = indexed_target(loaded, args.class_index, None)
    check_target(loaded, target)
    return target


def cmd_tcav(args: argparse.Namespace) -> None:
    from convvis_core.concepts.image_sets import RANDOM_SOURCES, random_sets
    from convvis_core.concepts.tcav import concept_picture, tcav
    from convvis_core.datasets.catalog import open_dataset
    from convvis_core.layers import default_layer
    from convvis_core.presentation.tcav_sheets import tcav_sheet

    loaded = load_model_argument(args)
    size = loaded.info.input_size
    target = target_argument(args, loaded)
    concept = concept_argument(args, size)
    images = images_argument(args, size)
    source = args.random if args.random in RANDOM_SOURCES else open_dataset(args.random)
    random = random_sets(source, args.runs, args.count, size, args.seed)
    layers = args.layers or [default_layer(loaded.model).path]
    with progress_bar("tcav", "images + CAVs") as report:
        result = tcav(loaded, concept, images, target, layers, random, args.seed, progress=report)
    print(f"TCAV of '{result.concept}' ({len(concept)} images: {result.concept_origin})\n"
          f"target: {result.target} over {result.target_images}\nrandom: {result.random_origin}"
          + (" (cached)" if result.from_cache else ""))
    print(f"{'layer':<32} {'finding':<18} {'score':>12} {'random':>12} {'p-value':>9} {'CAV acc.':>9}")
    for score in result.layers:
        print(f"{score.layer:<32} {score.finding:<18} {score.mean:>5.2f} ± {score.spread:<4.2f} "
              f"{score.random_mean:>5.2f} ± {score.random_spread:<4.2f} {score.p_value:>9.2g} {score.accuracy:>8.0%}")
    for score in result.layers:
        print(f"\n{score.layer}: {score.verdict(result.target)}")
    if args.csv:
        args.csv.write_text(result.to_csv())
        print(f"\nwrote {args.csv}")
    if args.png:
        pictures = {}
        if args.pictures:
            with progress_bar("concept directions", "steps") as report:
                pictures = {score.layer: concept_picture(loaded, score, progress=report).image for score in result.layers}
        tcav_sheet(result, concept, images, pictures).save(args.png)
        print(f"wrote {args.png}")


def add_tcav(concepts, parents: Parents) -> None:
    from convvis_core.concepts.image_sets import DEFAULT_SET_IMAGES, RANDOM_SOURCES
    from convvis_core.concepts.probes import PATTERNS
    from convvis_core.concepts.tcav import DEFAULT_RUNS

    tcav = concepts.add_parser("tcav", parents=[parents.model],
                               help="does a concept move a class? TCAV scores per layer against random directions, "
                                    "with a t-test")
    tcav.add_argument("--concept", required=True,
                      help=f"a pattern ConvVis draws ({', '.join(PATTERNS)}), or a .zip or folder of the concept's "
                           "images (at least 10)")
    tcav.add_argument("--colour", help="a drawn pattern's colour: a name (red, green, blue, yellow, white, black) or "
                                       "R,G,B (default: random per image)")
    tcav.add_argument("--angle", type=float, default=0.0, help="a drawn pattern's angle in degrees (0: horizontal "
                                                               "stripes; default 0)")
    tcav.add_argument("--images", required=True,
                      help="the target's images: gallery, mnist, fashion-mnist, a .zip or folder, or one image file "
                           "(or sample name) whose random crops are used")
    tcav.add_argument("--label", type=int, help="of a labelled dataset (mnist), only the images with this label")
    tcav.add_argument("--images-count", type=int, help="how many of the target's images (default: a dataset's all, "
                                                       "up to 500; --count crops of one image)")
    tcav.add_argument("--class", dest="class_index", type=int,
                      help="the class to test (of a segmentation: over the whole image)")
    tcav.add_argument("--unit", type=int, help="a values output's unit to test")
    tcav.add_argument("--filter", metavar="LAYER:N", help="a filter to test (its mean activation)")
    tcav.add_argument("--layers", nargs="+", help="layer paths (default: the last layer with a map)")
    tcav.add_argument("--random", default="photos",
                      help="where random sets come from: " + "; ".join(f"{name}: {text}" for name, text in
                                                                         RANDOM_SOURCES.items())
                           + "; or a .zip or folder of your own random images (default photos)")
    tcav.add_argument("--runs", type=int, default=DEFAULT_RUNS,
                      help=f"random sets, one CAV each (default {DEFAULT_RUNS})")
    tcav.add_argument("--count", type=int, default=DEFAULT_SET_IMAGES,
                      help=f"images per drawn concept and per random set (default {DEFAULT_SET_IMAGES})")
    tcav.add_argument("--seed", type=int, default=0)
    tcav.add_argument("--csv", type=Path, help="write the scores as CSV here")
    tcav.add_argument("--png", type=Path, help="write the sheet (concept, scores, furthest images) as PNG here")
    tcav.add_argument("--pictures", action="store_true",
                      help="with --png: also a feature visualization of each layer's concept direction")
    tcav.set_defaults(run=cmd_tcav)


SUBCOMMANDS = (add_tcav, add_craft_parser, add_groups_parser)  # `convvis concepts --help` lists them in this order


def add_commands(commands, parents: Parents) -> None:
    concepts = commands.add_parser("concepts", help="concepts: test whether a concept moves a class (tcav), find a "
                                   "target's concepts (craft), group one image's channels (groups)")
    subcommands = concepts.add_subparsers(dest="concepts_command", required=True, metavar="SUBCOMMAND")
    for add in SUBCOMMANDS:
        add(subcommands, parents)
