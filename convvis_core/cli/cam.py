"""`cam`: a heatmap of where the model looked, over the image, with its faithfulness scores."""

from __future__ import annotations

import argparse
from pathlib import Path

from convvis_core.cli.common import Parents, add_fit, image_argument, load_model_argument, progress_bar


def cam_target(args: argparse.Namespace, loaded, image):
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
        target = FilterTarget(args.layer or default_layer_path(loaded), args.filter)
    elif args.unit is not None:
        target = OutputUnitTarget(args.unit)
    elif args.norm:
        target = OutputNormTarget()
    elif args.similar_to is not None:
        target = similarity_target(loaded, image_argument(args.similar_to), f"'{Path(args.similar_to).name}'", args.fit)
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


def default_layer_path(loaded) -> str:
    """The last layer with a real map (before a segmentation's per-pixel head)."""
    from convvis_core.layers import default_layer

    return default_layer(loaded.model).path


def cmd_cam(args: argparse.Namespace) -> None:
    from convvis_core.presentation.overlays import overlay
    from convvis_core.cam import EmptyHeatmapError
    from convvis_core.cam.scoring import explain_and_score
    from convvis_core.images import as_model_sees_it

    loaded = load_model_argument(args)
    image = image_argument(args.image)
    layer = args.layer or default_layer_path(loaded)
    target = cam_target(args, loaded, image)
    scored = explain_and_score(loaded, image, args.method, target, layer, args.fit, args.baseline, steps=args.steps,
                               patch=args.patch, stride=args.stride, masks=args.masks)
    if isinstance(scored, str):
        raise EmptyHeatmapError(scored)
    result, scores = scored.heatmap, scored.scores
    overlay(as_model_sees_it(image, loaded.info, args.fit), result.values, args.alpha, "jet").save(args.out)
    names = loaded.info.output_info.class_names
    print(f"wrote {args.out}\ntarget: {result.target.describe(names)}\n"
          f"score: {scores.score_name} (what the deletion and insertion curves follow; "
          f"baseline: {args.baseline})\n"
          f"layer: {result.layer or 'none (input gradients)'}\n"
          f"deletion AUC:  {scores.deletion_auc:.4f} (lower is more faithful; {len(scores.fractions) - 1} steps)\n"
          f"insertion AUC: {scores.insertion_auc:.4f} (higher is more faithful)\n"
          f"ROAD:          {scored.road.combined:.4f} (higher is more faithful; about 0 for a random map)")
    if result.completeness is not None:
        print(f"completeness:  {result.completeness.sentence()}")
        if result.completeness.warning():
            print(f"warning: {result.completeness.warning()}")
    if args.sanity:
        print_trust(args, loaded, image, result)


def print_trust(args: argparse.Namespace, loaded, image, result) -> None:
    """``--sanity``: the map's similarity to itself as the model's layers are re-initialized, the flag, and
    MuFidelity, stability and complexity with what each measures."""
    from convvis_core.cam import method_named
    from convvis_core.cam.randomization import MEASURES, MODES, sanity_check
    from convvis_core.cam.trust import METRICS, trust_scores

    method = method_named(args.method, args.steps)
    with progress_bar("sanity check", "maps") as report:
        check = sanity_check(loaded, image, method, result.target, result.layer, args.randomization, args.depth,
                             args.fit, args.baseline, progress=report)
    print(f"\nsanity check, {MODES[check.mode]}{' (cached)' if check.from_cache else ''}:\n"
          f"  spearman: {MEASURES['spearman']}; ssim: {MEASURES['ssim']}")
    width = max(len("re-initialized"), *(len(step) for step in check.steps))
    print(f"  {'step':>4}  {'re-initialized':<{width}}  {'spearman':>8}  {'ssim':>6}")
    for number, (step, rank, structure, why) in enumerate(zip(check.steps, check.spearman, check.ssim, check.empty), 1):
        print(f"  {number:>4}  {step:<{width}}  {rank:>8.3f}  {structure:>6.3f}" + ("  (no map: counts as zero)" if why else ""))
    print(("FLAG: " if check.flagged else "") + check.sentence())
    scores = trust_scores(loaded, image, method, result, args.fit, args.baseline)
    print("metrics:")
    for name, value in scores.values().items():
        most = f" (log {scores.pixels} = {scores.most_complex:.2f} here)" if name == "complexity" else ""
        print(f"  {METRICS[name].heading:<12} {value:8.4f}  {METRICS[name].meaning}{most}")


def add_target_arguments(parser: argparse.ArgumentParser) -> None:
    """The options that name what is explained (read by :func:`cam_target`): a class, a segmentation class
    over a region, a values unit, the norm, the similarity to another image, or a filter of --layer."""
    parser.add_argument("--class", dest="class_index", type=int,
                        help="class index to explain (default: the top one); of a segmentation output, over --region")
    parser.add_argument("--region", metavar="T,L,B,R|predicted",
                        help="segmentation: the pixels to explain the class over: a box of rows T..B-1 and columns "
                             "L..R-1 of the output map, or 'predicted' (where the model predicts the class); "
                             "default: the whole image")
    parser.add_argument("--unit", type=int, help="values output (regression, embedding): explain this unit")
    parser.add_argument("--norm", action="store_true", help="values output: explain the output's norm")
    parser.add_argument("--similar-to", metavar="IMAGE",
                        help="values output: explain the cosine similarity to this image's output (file or sample name)")
    parser.add_argument("--filter", type=int, help="explain this filter of --layer instead of a class "
                                                   "(models without classes default to the most active one)")


def add_commands(commands, parents: Parents) -> None:
    from convvis_core.cam import METHODS

    cam = commands.add_parser("cam", parents=[parents.model], help="heatmap of where the model looked (Grad-CAM, ...) over the image as a "
                                          "PNG, with its deletion/insertion AUC")
    cam.add_argument("image", help="image file, or a sample name such as 'chelsea'")
    cam.add_argument("--method", choices=list(METHODS), default="gradcam")
    add_target_arguments(cam)
    cam.add_argument("--baseline", choices=("blur", "mean", "black"), default="blur",
                     help="what a removed pixel becomes for Score-CAM, Occlusion, RISE, Integrated Gradients' "
                          "starting point and the deletion/insertion curves (default blur)")
    cam.add_argument("--steps", type=int, help="integrated_gradients: steps along the path from the baseline to the "
                     "image (default 64; more make the attributions add up closer to the change in the target)")
    cam.add_argument("--patch", type=int, help="occlusion: side of the square patch in pixels (default: a seventh "
                     "of the image's shorter side, 32 px on 224); one forward pass per window")
    cam.add_argument("--stride", type=int, help="occlusion: pixels between windows (default: half the patch; 169 "
                     "windows with the default patch)")
    cam.add_argument("--masks", type=int, help="rise: random masks, one forward pass each (default 500: about 10 s for "
                     "MobileNet on 2 CPU cores; 4,000 for a smooth map)")
    cam.add_argument("--layer", help="layer path (default: the last layer with a map larger than 1×1)")
    add_fit(cam)
    cam.add_argument("--sanity", action="store_true",
                     help="also check the map: its similarity to itself as the model's layers are re-initialized from "
                          "the output down (Adebayo et al. 2018) and whether it depends on the model, then MuFidelity, "
                          "stability and complexity")
    cam.add_argument("--randomization", choices=("cascading", "independent"), default="cascading",
                     help="--sanity: layers stay randomized (cascading, default) or one at a time (independent)")
    cam.add_argument("--depth", choices=("above", "all"), default="above",
                     help="--sanity: re-initialize the layers above the explained one (default) or every weighted layer")
    cam.add_argument("--alpha", type=float, default=0.5, help="opacity of the map over the image (default 0.5)")
    cam.add_argument("--out", default="cam.png", help="PNG file to write (default cam.png)")
    cam.set_defaults(run=cmd_cam)
