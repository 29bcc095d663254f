"""`models`, `layers` and `predict`: what a model is and what it says about an image."""

from __future__ import annotations

import argparse

from convvis_core.cli.common import Parents, add_fit, image_argument, load_model_argument


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

    loaded = load_model_argument(args)
    for layer in spatial_layers(loaded.model):
        print(f"{layer.path:<45} {layer.kind:<22} {layer.shape_text}")


def cmd_predict(args: argparse.Namespace) -> None:
    from convvis_core.errors import ConvVisError
    from convvis_core.predictions import predict_outputs

    loaded = load_model_argument(args)
    chosen = None if args.output is None else [loaded.info.output]
    predictions = predict_outputs(loaded, image_argument(args.image), fit=args.fit, k=args.top, outputs=chosen)
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


def add_commands(commands, parents: Parents) -> None:
    commands.add_parser("models", help="list the models ConvVis knows by name").set_defaults(run=cmd_models)
    layers = commands.add_parser("layers", parents=[parents.model], help="list a model's spatial (4-D) layers")
    layers.set_defaults(run=cmd_layers)
    predict = commands.add_parser("predict", parents=[parents.model], help="top-k classes of an image")
    predict.add_argument("image", help="image file, or a sample name such as 'chelsea'")
    predict.add_argument("--top", type=int, default=5, help="how many classes (default 5)")
    add_fit(predict)
    predict.set_defaults(run=cmd_predict)
