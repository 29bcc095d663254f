"""`filters` and `circuit`: feature visualizations of filters, and what a filter reads."""

from __future__ import annotations

import argparse
import sys

from convvis_core.cli.common import Parents, add_fit, image_argument, load_model_argument, progress_bar


def cmd_filters(args: argparse.Namespace) -> None:
    from convvis_core.errors import LayerError
    from convvis_core.featureviz import parse, visualize_filters
    from convvis_core.featureviz.objectives import per_class
    from convvis_core.featureviz.presets import default_preset, fitted_preset
    from convvis_core.featureviz.render import grid_units
    from convvis_core.featureviz.selection import parse_filters
    from convvis_core.presentation.filter_grids import filter_grid

    loaded = load_model_argument(args)
    name = args.preset or default_preset(loaded.info.input_size)
    settings = fitted_preset(name, loaded.info.input_size)
    changes = {name: value for name, value in (("steps", args.steps), ("size", args.size), ("seed", args.seed))
               if value is not None}
    if args.objective:
        changes["objective"] = parse(args.objective)
    settings = settings.replace(**changes)
    print(f"preset: {name}; objective: {settings.objective}", file=sys.stderr)
    if args.layer is None and not per_class(settings.objective):
        raise LayerError("Name the layer whose filters to visualize (see `layers`); only ClassLogit() needs none.")
    layer, count = grid_units(loaded, args.layer, settings.objective)
    filters = parse_filters(args.filters, count)

    with progress_bar("filters", "steps") as report:
        results = visualize_filters(loaded, layer, filters, settings, progress=report)
    filter_grid(results).save(args.out)
    print(f"wrote {args.out}")
    for result in results:
        state = "dead (zero gradient: nothing moves it)" if result.dead else f"{result.start_activation:.3f} -> {result.final_activation:.3f}"
        state += "  (weak: barely fires; try --preset 'keras.io example')" if result.weak else ""
        print(f"filter {result.filter_index:>4}: {state}{'  (cached)' if result.from_cache else ''}")


def cmd_circuit(args: argparse.Namespace) -> None:
    from convvis_core.circuits import circuit
    from convvis_core.presentation.sheets import circuit_sheet
    from convvis_core.featureviz import PRESETS, visualize_filters
    from convvis_core.presentation.filter_grids import tile_image

    loaded = load_model_argument(args)
    found = circuit(loaded, args.layer, args.filter, image_argument(args.image) if args.image else None, fit=args.fit)
    settings = PRESETS[args.preset].replace(**({"steps": args.steps} if args.steps else {}))
    print(f"visualizing {args.layer} #{args.filter} and its top {args.top} inputs…", file=sys.stderr)
    head = visualize_filters(loaded, args.layer, [args.filter], settings)[0]
    inputs = visualize_filters(loaded, found.source, [c.index for c in found.top(args.top)], settings) \
        if found.source else None
    pictures = None if inputs is None else [tile_image(result) for result in inputs]
    circuit_sheet(found, args.top, tile_image(head), pictures).save(args.out)
    print(f"wrote {args.out}\n{args.layer} #{args.filter} reads {found.source or 'the image'} "
          f"(ranked by {found.ranked_by}){'; its weights are all about zero (dead)' if found.zero_weights else ''}:")
    for row in found.table(args.top):
        extra = f"  contribution {row['contribution']:+.4f}" if "contribution" in row else ""
        print(f"{row['rank']:>3}. {row['name']:<30} {row['sign']:<11} norm {row['norm']:.4f}  sum {row['sum']:+.4f}{extra}")


def add_commands(commands, parents: Parents) -> None:
    from convvis_core.featureviz.presets import PRESETS

    filters = commands.add_parser("filters", parents=[parents.model, parents.recipe], help="feature visualization of filters as a PNG grid")
    filters.add_argument("layer", nargs="?", help="layer path (see `layers`): whose filters make the grid, and what a "
                                                 "term of the objective reads when its layer is None (none for ClassLogit())")
    filters.add_argument("--filters", default="0-15", help="indices and ranges, e.g. 0-15,32 (default 0-15)")
    filters.add_argument("--preset", choices=list(PRESETS),
                         help="feature-visualization recipe (default: the one that fits the model's input size)")
    filters.add_argument("--seed", type=int, help="random seed (default 0)")
    filters.add_argument("--objective", help="what to maximize, as in Python (a notebook's visualize() takes the same "
                                             "terms) or as its JSON spec: terms joined by +, - and numbers times them, e.g. "
                                             "'Filter() - 0.5 * Channel(None, 7) + 0.1 * TotalVariation()'; Filter() is "
                                             "each picture's own filter; Channel(\"conv1\", 3), Neuron(index=3), "
                                             "Direction(\"conv1\", [...]), DeepDream(), ClassLogit() (each picture's class), "
                                             "Diversity(), L1(), L2(), Blur() (default: the preset's, Filter())")
    filters.add_argument("--out", required=True, help="PNG file to write")
    filters.set_defaults(run=cmd_filters)
    circuit = commands.add_parser("circuit", parents=[parents.model], help="a filter's strongest input channels and kernel slices as a PNG")
    circuit.add_argument("layer", help="conv layer, or the BatchNorm/activation after one (see `layers`)")
    circuit.add_argument("filter", type=int, help="filter index")
    circuit.add_argument("--top", type=int, default=6, help="how many input channels (default 6)")
    circuit.add_argument("--image", help="rank by contribution on this image (file or sample name) instead of weight")
    add_fit(circuit)
    circuit.add_argument("--preset", default="quick preview", choices=list(PRESETS))
    circuit.add_argument("--steps", type=int, help="optimization steps (default: the preset's)")
    circuit.add_argument("--out", default="circuit.png", help="PNG file to write (default circuit.png)")
    circuit.set_defaults(run=cmd_circuit)
