"""Command line on the same core functions the pages use: ``convvis --help`` (or ``python -m convvis_core``).

One module per group of commands, each with its ``cmd_*`` functions and the ``add_commands`` that
declares their arguments; ``common`` holds what they share (reading the model and image arguments,
progress bars, the argument groups)."""

from __future__ import annotations

import argparse
import sys

from convvis_core.cli import activations, atlas, cam, compare, concepts, filters, models, topk
from convvis_core.cli.common import parents

COMMAND_GROUPS = (models, activations, filters, topk, atlas, cam, compare, concepts)  # the order of `convvis --help`


def build_parser() -> argparse.ArgumentParser:
    installed = not sys.argv[0].endswith("__main__.py")  # the `convvis` command rather than python -m
    parser = argparse.ArgumentParser(prog="convvis" if installed else "python -m convvis_core", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    shared = parents()
    for group in COMMAND_GROUPS:
        group.add_commands(commands, shared)
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
