"""Command line on the same core functions the pages use: ``convvis --help`` (or ``python -m convvis_core``)."""

from __future__ import annotations

import argparse
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator


def _image(source: str):
    from convvis_core.images import open_image
    from convvis_core.samples import SAMPLES, load_sample

    if source in SAMPLES and not Path(source).exists():
        return load_sample(source)
    return open_image(source)


@contextmanager
def _progress_bars(units: dict[str, str]) -> Iterator[Callable[[str, int, int], None]]:
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
def _progress_bar(task: str, unit: str) -> Iterator[Callable[[int, int], None]]:
    """One progress bar fed by the core's (done, total) callbacks."""
    with _progress_bars({task: unit}) as report:
        yield lambda done, total: report(task, done, total)


def _output_choice(text: str) -> int | str:
    """``--output``: an index (0, 1, ...) or a head's name."""
    return int(text) if text.strip().isdigit() else text


def _held_values(items: list[str] | None) -> dict[str, tuple[float, ...]]:
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


def _load(args: argparse.Namespace):
    """The model named on the command line: the output ``--output`` (read as ``--output-kind``), other
    inputs held at ``--held``, read with ``--preprocessing`` and named by ``--labels``."""
    from convvis_core.errors import ConvVisError
    from convvis_core.labels import read_labels
    from convvis_core.models import load_model
    from convvis_core.preprocessing import MODES

    loaded = load_model(args.model, progress=lambda message: print(message, file=sys.stderr))
    output, kind = getattr(args, "output", None), getattr(args, "output_kind", None)
    if output is not None or kind is not None:
        loaded = loaded.with_output(loaded.info.output if output is None else output, kind)
        if kind is not None and loaded.info.output_info.kind != kind:  # a registry model: its one output as it is
            raise ConvVisError(f"{loaded.info.display_name}'s output '{loaded.info.output_info.name}' "
                               f"{loaded.info.output_info.holds}; it cannot be read as {kind}.")
    held = _held_values(getattr(args, "held", None))
    if held:
        loaded = loaded.with_held_inputs(held, "--held")
    if args.preprocessing:
        loaded = loaded.with_preprocessing(args.preprocessing, "--preprocessing")
    if getattr(args, "labels", None):
        loaded = loaded.with_labels(read_labels(args.labels.read_bytes(), args.labels.name), args.labels.name)
    info = loaded.info
    print(f"preprocessing: {info.preprocessing} ({MODES[info.preprocessing]}): {info.preprocessing_why}", file=sys.stderr)
    _say_what_is_explained(loaded)
    return loaded


def _say_what_is_explained(loaded) -> None:
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

    loaded = _load(args)
    for layer in spatial_layers(loaded.model):
        print(f"{layer.path:<45} {layer.kind:<22} {layer.shape_text}")


def cmd_predict(args: argparse.Namespace) -> None:
    from convvis_core.errors import ConvVisError
    from convvis_core.predictions import predict_outputs

    loaded = _load(args)
    chosen = None if args.output is None else [loaded.info.output]
    predictions = predict_outputs(loaded, _image(args.image), fit=args.fit, k=args.top, outputs=chosen)
    if not any(prediction.predicts for prediction in predictions):
        raise ConvVisError(" ".join(f"{loaded.info.display_name}'s output '{prediction.name}' {prediction.reason}."
                                    if loaded.info.outputs else f"{loaded.info.display_name} {prediction.reason}."
                                    for prediction in predictions))
    if len(predictions) == 1 and predictions[0].kind == "classes":  # a classifier: one line per class
        for prediction in predictions[0].classes:
            print(f"{prediction.rank}. {prediction.class_name:<30} {prediction.probability:.4f}  "
                  f"(class {prediction.class_index})")
        return
    for prediction in predictions:
        print(prediction.describe())


def cmd_filters(args: argparse.Namespace) -> None:
    from convvis_core.featureviz import filter_grid, visualize_filters
    from convvis_core.featureviz.presets import default_preset, fitted_preset
    from convvis_core.featureviz.selection import parse_filters
    from convvis_core.layers import find_layer

    loaded = _load(args)
    name = args.preset or default_preset(loaded.info.input_size)
    print(f"preset: {name}", file=sys.stderr)
    settings = fitted_preset(name, loaded.info.input_size)
    changes = {name: value for name, value in (("steps", args.steps), ("size", args.size), ("seed", args.seed))
               if value is not None}
    settings = settings.replace(**changes)
    filters = parse_filters(args.filters, find_layer(loaded.model, args.layer).channels)

    with _progress_bar("filters", "steps") as report:
        results = visualize_filters(loaded, args.layer, filters, settings, progress=report)
    filter_grid(results).save(args.out)
    print(f"wrote {args.out}")
    for result in results:
        state = "dead (zero gradient: nothing moves it)" if result.dead else f"{result.start_activation:.3f} -> {result.final_activation:.3f}"
        state += "  (weak: barely fires; try --preset 'keras.io example')" if result.weak else ""
        print(f"filter {result.filter_index:>4}: {state}{'  (cached)' if result.from_cache else ''}")


def cmd_activations(args: argparse.Namespace) -> None:
    from convvis_core.activations import channel_grid, channel_stats, default_spread, feature_maps

    loaded = _load(args)
    paths = args.layer or [default_spread(loaded.model)[0].path]
    maps_by_path = feature_maps(loaded, _image(args.image), paths, fit=args.fit)
    for path, maps in maps_by_path.items():
        out = args.out if len(maps_by_path) == 1 else args.out.with_stem(f"{args.out.stem}_{path.replace('/', '_')}")
        channel_grid(maps, args.normalize, args.sort).to_pil().save(out)
        stats = channel_stats(maps)
        print(f"{out}\n  {path}: {maps.shape[0]}×{maps.shape[1]}, {stats.channels} channels, "
              f"{int(stats.dead.sum())} dead, {int(stats.constant.sum())} constant")


def cmd_circuit(args: argparse.Namespace) -> None:
    from convvis_core.circuits import circuit
    from convvis_core.drawing import circuit_sheet
    from convvis_core.featureviz import PRESETS, visualize_filters
    from convvis_core.featureviz.grid import tile_image

    loaded = _load(args)
    found = circuit(loaded, args.layer, args.filter, _image(args.image) if args.image else None, fit=args.fit)
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


def cmd_topk(args: argparse.Namespace) -> None:
    from convvis_core.config import TOPK_KEPT
    from convvis_core.datasets.catalog import open_dataset
    from convvis_core.errors import ConvVisError
    from convvis_core.drawing import example_sheet, example_views
    from convvis_core.topk import scan

    if not 1 <= args.k <= TOPK_KEPT:
        raise ConvVisError(f"-k must be 1 to {TOPK_KEPT} (the examples kept per filter).")
    loaded = _load(args)
    dataset = open_dataset(args.dataset)
    for reason, names in dataset.skipped.items():
        print(f"skipped {len(names)} file(s), {reason}: {', '.join(names[:5])}{', …' if len(names) > 5 else ''}",
              file=sys.stderr)
    with _progress_bar("scan", "images") as report:
        index = scan(loaded, dataset, args.layer, args.limit, progress=report)
    top = index.top.examples(args.filter, args.k)
    example_sheet(example_views(loaded, dataset, args.layer, args.filter, top)).save(args.out)
    print(f"wrote {args.out}\n{args.layer} #{args.filter}, top {len(top)} of {index.count:,} images in "
          f"{dataset.name}{' (cached scan)' if index.from_cache else ''}:")
    for example in top:
        print(f"{example.rank:>3}. {dataset.caption(example.index):<30} max {example.value:.4f} at "
              f"({example.row}, {example.col})  mean {example.mean:.4f}")


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
    with _progress_bars({"filters": "filters", "images": "images"}) as report:
        summary = run_atlas(request, engine, progress=report)
    print("\n".join(summary.lines()))
    if args.export:
        from convvis_core.atlas.plan import make_plan, open_model
        from convvis_core.config import cache_dir
        from convvis_core.export import export_site

        plan = make_plan(request, open_model(request.model, request.preprocessing), cache_dir())
        site = export_site(plan.loaded, plan.layers, args.export, plan.settings, plan.dataset, plan.count or None)
        print(f"exported {site.units} unit pages of {site.layers} layers ({site.pictures} with pictures, "
              f"{site.with_examples} with dataset examples) to {site.folder}; open {site.folder / 'index.html'}")


def _cam_target(args: argparse.Namespace, loaded, image):
    """The target the cam options name (None: the default for the output's kind), checked against
    the output: a class, a segmentation class over a region, a values unit, the norm, the similarity
    to another image, or a filter of --layer."""
    from convvis_core.cam import ClassTarget, FilterTarget, OutputNormTarget, OutputUnitTarget, Region, RegionTarget
    from convvis_core.cam.targets import check_target, similarity_target
    from convvis_core.errors import ConvVisError
    from convvis_core.segmentation import predicted_region

    named = [
        option for option, value in (("--class", args.class_index is not None), ("--unit", args.unit is not None),
                                     ("--norm", args.norm), ("--similar-to", args.similar_to is not None),
                                     ("--filter", args.filter is not None)) if value]
    if len(named) > 1:
        raise ConvVisError(f"Choose one target: {' and '.join(named)} were both given.")
    output = loaded.info.output_info
    if args.region is not None and output.kind != "segmentation":
        raise ConvVisError(f"--region is for a segmentation output; output '{output.name}' {output.holds}.")
    target = None
    if args.filter is not None:
        target = FilterTarget(args.layer or _default_layer(loaded), args.filter)
    elif args.unit is not None:
        target = OutputUnitTarget(args.unit)
    elif args.norm:
        target = OutputNormTarget()
    elif args.similar_to is not None:
        target = similarity_target(loaded, _image(args.similar_to), f"'{Path(args.similar_to).name}'", args.fit)
    elif output.kind == "segmentation" and (args.class_index is not None or args.region is not None):
        index = min(1, output.units - 1) if args.class_index is None else args.class_index
        region = None
        if args.region == "predicted":
            check_target(loaded, RegionTarget(index))  # the class is in range before its mask is looked for
            region = predicted_region(loaded, image, index, args.fit)
        elif args.region is not None:
            try:
                top, left, bottom, right = (int(side) for side in args.region.split(","))
            except ValueError:
                raise ConvVisError(f"--region {args.region!r}: write TOP,LEFT,BOTTOM,RIGHT (rows and columns of the "
                                   f"output map, {output.shape[0]}×{output.shape[1]}), or 'predicted'.") from None
            region = Region.box(tuple(output.shape[:2]), top, left, bottom, right)
        target = RegionTarget(index, region)
    elif args.class_index is not None:
        target = ClassTarget(args.class_index)
    if target is not None:
        check_target(loaded, target)
    return target


def _default_layer(loaded) -> str:
    """The last layer with a real map (before a segmentation's per-pixel head)."""
    from convvis_core.layers import default_layer

    return default_layer(loaded.model).path


def cmd_cam(args: argparse.Namespace) -> None:
    from convvis_core.activations import overlay
    from convvis_core.cam import EmptyHeatmapError
    from convvis_core.cam.scoring import explain_and_score
    from convvis_core.images import as_model_sees_it

    loaded = _load(args)
    image = _image(args.image)
    layer = args.layer or _default_layer(loaded)
    target = _cam_target(args, loaded, image)
    scored = explain_and_score(loaded, image, args.method, target, layer, args.fit, args.baseline, args.steps)
    if isinstance(scored, str):
        raise EmptyHeatmapError(scored)
    result, scores = scored.heatmap, scored.scores
    overlay(as_model_sees_it(image, loaded.info, args.fit), result.values, args.alpha, "jet").save(args.out)
    names = loaded.info.output_info.class_names
    print(f"wrote {args.out}\ntarget: {result.target.describe(names)}\n"
          f"score: {result.target.score_name} (what the deletion and insertion curves follow; "
          f"baseline: {args.baseline})\n"
          f"layer: {result.layer or 'none (input gradients)'}\n"
          f"deletion AUC:  {scores.deletion_auc:.4f} (lower is more faithful)\n"
          f"insertion AUC: {scores.insertion_auc:.4f} (higher is more faithful)\n"
          f"ROAD:          {scored.road.combined:.4f} (higher is more faithful; about 0 for a random map)")


def build_parser() -> argparse.ArgumentParser:
    from convvis_core.cam import METHODS
    from convvis_core.featureviz.presets import PRESETS

    from convvis_core.preprocessing import MODES

    installed = not sys.argv[0].endswith("__main__.py")  # the `convvis` command rather than python -m
    parser = argparse.ArgumentParser(prog="convvis" if installed else "python -m convvis_core", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    pixels = argparse.ArgumentParser(add_help=False)  # what every command that loads a model takes
    pixels.add_argument("model", help="registry name (see `models`) or a .keras/.h5 file")
    pixels.add_argument("--preprocessing", choices=list(MODES),
                        help="how the model's pixels are scaled (default: inferred from the model; see `layers`): "
                             + "; ".join(f"{mode}: {text}" for mode, text in MODES.items()))
    model = argparse.ArgumentParser(add_help=False, parents=[pixels])  # and class names, where they are shown
    model.add_argument("--labels", type=Path, help="class names, one per line (.txt) or a .json list or "
                                                   "class_indices dict, for a model file's outputs")
    model.add_argument("--output", type=_output_choice, metavar="NAME_OR_INDEX",
                       help="which output (head) of a model with several to use, by its layer name or index "
                            "(default: the first; `predict` lists them all, and an unknown one is refused with the list)")
    model.add_argument("--output-kind", choices=("classes", "values"),
                       help="read a linear vector output as class scores or as values (a regression, an embedding); "
                            "default: inferred from its head")
    model.add_argument("--held", action="append", metavar="NAME=v1,v2,...",
                       help="the value of an input besides the image (repeatable; default: zeros)")
    commands.add_parser("models", help="list the models ConvVis knows by name").set_defaults(run=cmd_models)
    layers = commands.add_parser("layers", parents=[model], help="list a model's spatial (4-D) layers")
    layers.set_defaults(run=cmd_layers)
    predict = commands.add_parser("predict", parents=[model], help="top-k classes of an image")
    predict.add_argument("image", help="image file, or a sample name such as 'chelsea'")
    predict.add_argument("--top", type=int, default=5, help="how many classes (default 5)")
    predict.add_argument("--fit", choices=("stretch", "crop", "pad"), default="stretch",
                         help="how to bring the image to the model's input size")
    predict.set_defaults(run=cmd_predict)
    activations = commands.add_parser("activations", parents=[model], help="feature maps of an image, all channels of a layer as a PNG grid")
    activations.add_argument("image", help="image file, or a sample name such as 'chelsea'")
    activations.add_argument("--layer", action="append", help="layer path (repeatable; default: the first "
                             "layer of the default spread, see `layers`)")
    activations.add_argument("--normalize", choices=("standardize", "minmax", "raw"), default="standardize",
                             help="standardize: per channel, as in DLwP; minmax: per layer; raw: as computed")
    activations.add_argument("--sort", action="store_true", help="channels by mean activation, strongest first")
    activations.add_argument("--fit", choices=("stretch", "crop", "pad"), default="stretch",
                             help="how to bring the image to the model's input size")
    activations.add_argument("--out", type=Path, default=Path("activations.png"),
                             help="PNG to write (with several layers, the layer is appended to the name)")
    activations.set_defaults(run=cmd_activations)
    recipe = argparse.ArgumentParser(add_help=False)  # changes to a feature-visualization preset
    recipe.add_argument("--steps", type=int, help="optimization steps (default: the preset's)")
    recipe.add_argument("--size", type=int, help="image side in pixels (default: the preset's)")
    filters = commands.add_parser("filters", parents=[model, recipe], help="feature visualization of filters as a PNG grid")
    filters.add_argument("layer", help="layer path (see `layers`)")
    filters.add_argument("--filters", default="0-15", help="indices and ranges, e.g. 0-15,32 (default 0-15)")
    filters.add_argument("--preset", choices=list(PRESETS),
                         help="feature-visualization recipe (default: the one that fits the model's input size)")
    filters.add_argument("--seed", type=int, help="random seed (default 0)")
    filters.add_argument("--out", required=True, help="PNG file to write")
    filters.set_defaults(run=cmd_filters)
    circuit = commands.add_parser("circuit", parents=[model], help="a filter's strongest input channels and kernel slices as a PNG")
    circuit.add_argument("layer", help="conv layer, or the BatchNorm/activation after one (see `layers`)")
    circuit.add_argument("filter", type=int, help="filter index")
    circuit.add_argument("--top", type=int, default=6, help="how many input channels (default 6)")
    circuit.add_argument("--image", help="rank by contribution on this image (file or sample name) instead of weight")
    circuit.add_argument("--fit", choices=("stretch", "crop", "pad"), default="stretch",
                         help="how to bring the image to the model's input size")
    circuit.add_argument("--preset", default="quick preview", choices=list(PRESETS))
    circuit.add_argument("--steps", type=int, help="optimization steps (default: the preset's)")
    circuit.add_argument("--out", default="circuit.png", help="PNG file to write (default circuit.png)")
    circuit.set_defaults(run=cmd_circuit)
    topk = commands.add_parser("topk", parents=[model], help="the dataset images that excite a filter most, as a PNG")
    topk.add_argument("dataset", help="gallery, mnist, fashion-mnist, or a path to a .zip or folder of images")
    topk.add_argument("--layer", required=True, help="layer path (see `layers`)")
    topk.add_argument("--filter", type=int, required=True, help="filter index")
    topk.add_argument("-k", type=int, default=9, help="how many images (default 9, at most 32)")
    topk.add_argument("--limit", type=int, help="scan only the first LIMIT images (default: all, up to the limit)")
    topk.add_argument("--out", default="topk.png", help="PNG file to write (default topk.png)")
    topk.set_defaults(run=cmd_topk)
    atlas = commands.add_parser("atlas", parents=[pixels, recipe], help="precompute filters' pictures and top-k indexes into "
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
    cam = commands.add_parser("cam", parents=[model], help="heatmap of where the model looked (Grad-CAM, ...) over the image as a "
                                          "PNG, with its deletion/insertion AUC")
    cam.add_argument("image", help="image file, or a sample name such as 'chelsea'")
    cam.add_argument("--method", choices=list(METHODS), default="gradcam")
    cam.add_argument("--class", dest="class_index", type=int,
                     help="class index to explain (default: the top one); of a segmentation output, over --region")
    cam.add_argument("--region", metavar="T,L,B,R|predicted",
                     help="segmentation: the pixels to explain the class over: a box of rows T..B-1 and columns "
                          "L..R-1 of the output map, or 'predicted' (where the model predicts the class); "
                          "default: the whole image")
    cam.add_argument("--unit", type=int, help="values output (regression, embedding): explain this unit")
    cam.add_argument("--norm", action="store_true", help="values output: explain the output's norm")
    cam.add_argument("--similar-to", metavar="IMAGE",
                     help="values output: explain the cosine similarity to this image's output (file or sample name)")
    cam.add_argument("--filter", type=int, help="explain this filter of --layer instead of a class "
                                                "(models without classes default to the most active one)")
    cam.add_argument("--baseline", choices=("blur", "mean", "black"), default="blur",
                     help="what a removed pixel becomes for Score-CAM and the deletion/insertion curves "
                          "(default blur)")
    cam.add_argument("--steps", type=int, help="integrated_gradients: steps along the path from the baseline to the "
                     "image (default 64; more make the attributions add up closer to the change in the target)")
    cam.add_argument("--layer", help="layer path (default: the last layer with a map larger than 1×1)")
    cam.add_argument("--fit", choices=("stretch", "crop", "pad"), default="stretch",
                     help="how to bring the image to the model's input size")
    cam.add_argument("--alpha", type=float, default=0.5, help="opacity of the map over the image (default 0.5)")
    cam.add_argument("--out", default="cam.png", help="PNG file to write (default cam.png)")
    cam.set_defaults(run=cmd_cam)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from convvis_core.errors import ConvVisError

    try:
        args.run(args)
    except ConvVisError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except OSError as error:  # e.g. --out in a folder that does not exist or is not writable
        print(f"error: {error.strerror or error}: {error.filename or ''}".rstrip(": "), file=sys.stderr)
        return 2
    return 0
