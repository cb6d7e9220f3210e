"""The ``lossfuzz`` command line.

Every failure that is the user's (an unknown name, a malformed value, an input
outside a loss's domain) prints one line on stderr and exits 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys

import harness

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad input to lossfuzz: one line for the user, exit code 2."""


def _parse_value(name: str, text: str):
    try:
        return json.loads(text)  # numbers, nested lists, NaN, Infinity, -Infinity
    except json.JSONDecodeError:
        lowered = text.strip().lower()
        if lowered in ("inf", "+inf", "-inf", "nan"):
            return float(lowered)
        raise UsageError(f"{name}={text!r} is not a number or a JSON list of numbers") from None


def cmd_losses(args) -> int:
    import oracles

    rows = sorted(oracles.losses().values(), key=lambda s: (s.variant_of is not None, s.id))
    width = max(len(s.id) for s in rows)
    for spec in rows:
        tag = f"  (variant of {spec.variant_of})" if spec.variant_of else ""
        print(f"{spec.id:<{width}}  {', '.join(spec.inputs):<40} {spec.formula}{tag}")
    return EXIT_OK


def cmd_oracle(args) -> int:
    import mpmath
    import numpy as np

    import oracles

    inputs = {}
    for item in args.inputs:
        name, sep, text = item.partition("=")
        if not sep:
            raise UsageError(f"expected NAME=VALUE, got {item!r}")
        inputs[name] = _parse_value(name, text)
    ev = oracles.evaluate(args.loss, args.dtype, **inputs)
    with mpmath.workdps(args.digits):
        for index in np.ndindex(ev.reference.shape):
            exact = ev.exact[index]
            ref = float(ev.reference[index])
            where = f"[{', '.join(map(str, index))}] " if index else ""
            print(
                f"{where}exact {mpmath.nstr(exact, args.digits)}  "
                f"{args.dtype} {ref!r} ({ref.hex()})"
            )
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lossfuzz",
        description="Numerical-stability fuzzing of cross-entropy losses against an exact oracle.",
    )
    p.add_argument("--version", action="version", version=f"lossfuzz {harness.__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    s = sub.add_parser("losses", help="list the losses the oracle defines")
    s.set_defaults(func=cmd_losses)

    s = sub.add_parser(
        "oracle", help="exact and correctly rounded value of one loss at given inputs"
    )
    s.add_argument("loss")
    s.add_argument("inputs", nargs="*", metavar="NAME=VALUE", help="e.g. logits=-50 labels=0")
    s.add_argument("--dtype", default="float32")
    s.add_argument("--digits", type=int, default=25, help="significant digits of the exact value")
    s.set_defaults(func=cmd_oracle)
    return p


def main(argv: list[str] | None = None) -> int:
    import oracles

    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command == "oracle" and all("=" in e for e in extra):
        args.inputs += extra  # NAME=VALUE pairs given after an option
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return args.func(args)
    except (UsageError, oracles.DomainError, oracles.UnknownName, TypeError, ValueError) as exc:
        print(f"lossfuzz: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("lossfuzz: interrupted", file=sys.stderr)
        return 130
