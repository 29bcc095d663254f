"""`compare`: what changed between two models (fine-tuning, another run, pruning), layer by layer and filter by filter."""

from __future__ import annotations

import argparse
import sys

from convvis_core.cli.common import Parents, load_model_argument, progress_bar


def cmd_compare(args: argparse.Namespace) -> None:
    from convvis_core.compare.changes import change_text, layer_summaries
    from convvis_core.compare.similarity import compare_models
    from convvis_core.datasets.catalog import open_dataset
    from convvis_core.models import load_model

    first = load_model_argument(args)
    other = load_model(args.other, progress=lambda message: print(message, file=sys.stderr))
    if args.preprocessing:
        other = other.with_preprocessing(args.preprocessing, "--preprocessing")
    dataset = open_dataset(args.dataset)
    with progress_bar("compare", "images") as report:
        result = compare_models(first, other, dataset, args.images, args.layers, args.matrix, progress=report)
    print(f"{first.info.display_name} (A) vs {other.info.display_name} (B), linear CKA over {result.count:,} images "
          f"of {dataset.name}{' (cached)' if result.from_cache else ''}:")
    for line in result.matching.lines():
        print(line)
    summaries = layer_summaries(first, other, result)
    if summaries:
        print(f"{'layer':<40} {'CKA':>7} {'weight Δ':>9} {'act. Δ':>8}")
    for summary in summaries:
        print(f"{summary.layer:<40} {change_text(summary.cka, 7)} {change_text(summary.weight_change, 9)} "
              f"{change_text(summary.activation_change, 8)}")
    if args.matrix:
        print("\nCKA matrix (rows: A's layers, columns: B's layers):")
        print("\n".join(f"{path:<40} " + " ".join(f"{value:.2f}" for value in row)
                        for path, row in zip(result.layers_a, result.cka)))
    for summary in summaries:
        print(f"\nmost changed filters of {summary.layer} (activation Δ = 1 − correlation, weight Δ = relative norm):")
        for row in summary.filters[:args.top]:
            print(f"  #{row.filter:<5} act. Δ {change_text(row.activation_change, 6)}  weight Δ {change_text(row.weight_change, 6)}")


def add_commands(commands, parents: Parents) -> None:
    compare = commands.add_parser("compare", parents=[parents.pixels],
                                  help="what changed between two models: CKA per layer, most changed filters")
    compare.add_argument("other", help="the second model (B): registry name or a .keras/.h5 file")
    compare.add_argument("--dataset", required=True, help="gallery, mnist, fashion-mnist, or a path to a .zip or folder")
    compare.add_argument("--images", type=int, help="compare on the first N images (default: all, up to the limit)")
    compare.add_argument("--layers", nargs="+", help="layer paths to compare (default: every layer at the same path in both)")
    compare.add_argument("--matrix", action="store_true", help="also print the full layer × layer CKA matrix")
    compare.add_argument("--top", type=int, default=5, help="changed filters listed per layer (default 5)")
    compare.set_defaults(run=cmd_compare)
