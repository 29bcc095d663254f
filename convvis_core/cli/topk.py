"""`topk`: the dataset images that excite a filter most."""

from __future__ import annotations

import argparse
import sys

from convvis_core.cli.common import Parents, load_model_argument, progress_bar


def cmd_topk(args: argparse.Namespace) -> None:
    from convvis_core.config import TOPK_KEPT
    from convvis_core.datasets.catalog import open_dataset
    from convvis_core.errors import ConvVisError
    from convvis_core.presentation.sheets import example_sheet, example_views
    from convvis_core.topk import scan

    if not 1 <= args.k <= TOPK_KEPT:
        raise ConvVisError(f"-k must be 1 to {TOPK_KEPT} (the examples kept per filter).")
    loaded = load_model_argument(args)
    dataset = open_dataset(args.dataset)
    for reason, names in dataset.skipped.items():
        print(f"skipped {len(names)} file(s), {reason}: {', '.join(names[:5])}{', …' if len(names) > 5 else ''}",
              file=sys.stderr)
    with progress_bar("scan", "images") as report:
        index = scan(loaded, dataset, args.layer, args.limit, progress=report)
    top = index.top.examples(args.filter, args.k)
    example_sheet(example_views(loaded, dataset, args.layer, args.filter, top)).save(args.out)
    print(f"wrote {args.out}\n{args.layer} #{args.filter}, top {len(top)} of {index.count:,} images in "
          f"{dataset.name}{' (cached scan)' if index.from_cache else ''}:")
    for example in top:
        print(f"{example.rank:>3}. {dataset.caption(example.index):<30} max {example.value:.4f} at "
              f"({example.row}, {example.col})  mean {example.mean:.4f}")


def add_commands(commands, parents: Parents) -> None:
    topk = commands.add_parser("topk", parents=[parents.model], help="the dataset images that excite a filter most, as a PNG")
    topk.add_argument("dataset", help="gallery, mnist, fashion-mnist, or a path to a .zip or folder of images")
    topk.add_argument("--layer", required=True, help="layer path (see `layers`)")
    topk.add_argument("--filter", type=int, required=True, help="filter index")
    topk.add_argument("-k", type=int, default=9, help="how many images (default 9, at most 32)")
    topk.add_argument("--limit", type=int, help="scan only the first LIMIT images (default: all, up to the limit)")
    topk.add_argument("--out", default="topk.png", help="PNG file to write (default topk.png)")
    topk.set_defaults(run=cmd_topk)
