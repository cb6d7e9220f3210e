"""The ``lossfuzz`` command line: the parser, and the one place errors become exit codes.

Every failure that is the user's (an unknown name, a malformed value or file, an
input outside a loss's domain) prints one line on stderr and exits 2, never a
traceback; an internal error prints one line and exits 3 (``LOSSFUZZ_DEBUG=1``
shows its traceback). Exit 1 means findings changed (repro) or a regression (gate).
"""

from __future__ import annotations

import argparse
import os
import sys

import lossfuzz
from lossfuzz.harness.commands import (
    EXIT_INTERNAL,
    EXIT_USAGE,
    cmd_baseline,
    cmd_contracts,
    cmd_gate,
    cmd_losses,
    cmd_merge,
    cmd_oracle,
    cmd_report,
    cmd_repro,
    cmd_run,
    cmd_sweep,
    cmd_triage,
)
from lossfuzz.harness.errors import UsageError, first_line
from lossfuzz.harness.isolation import WorkerStartError

MAX_TIMEOUT = 7 * 86400.0  # seconds: a week; longer waits overflow the pipe's poll


def _nonnegative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 0")
    return value


def _positive_int(text: str) -> int:
    value = _nonnegative_int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 1")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value <= MAX_TIMEOUT:
        raise argparse.ArgumentTypeError(
            f"{text!r} must be a number of seconds in (0, {MAX_TIMEOUT:g}]"
        )
    return value


def _gibibytes(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.25 <= value <= 2**20:
        raise argparse.ArgumentTypeError(f"{text!r} must be a number of GiB from 0.25 to 1048576")
    return value


def _digits(text: str) -> int:
    value = _positive_int(text)
    if value > 10000:
        raise argparse.ArgumentTypeError(f"{text!r} must be at most 10000")
    return value


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="lossfuzz",
        description="Numerical-stability fuzzing of cross-entropy losses against an exact oracle.",
    )
    p.add_argument("--version", action="version", version=f"lossfuzz {lossfuzz.__version__}")
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
    s.add_argument(
        "--digits", type=_digits, default=25, help="significant digits of the exact value"
    )
    s.set_defaults(func=cmd_oracle)

    s = sub.add_parser("run", help="fuzz impls against the oracle and write a results file")
    s.add_argument("--loss", action="append", help="only impls of this loss (repeatable)")
    s.add_argument(
        "--impl",
        action="append",
        help="an impl id, a pattern ('torch-compile:*'), or module:function for your own "
        "loss (repeatable)",
    )
    s.add_argument("--dtype", action="append", help="float16, bfloat16, float32, float64")
    s.add_argument(
        "--quantity",
        action="append",
        choices=("value", "grad", "reduction"),
        help="value cells, gradient cells, reduction cells (repeatable; default all)",
    )
    s.add_argument(
        "--batch",
        action="append",
        type=_positive_int,
        help="a reduction cell's batch size in rows (repeatable; default 1000 and 1000000)",
    )
    group = s.add_mutually_exclusive_group()
    group.add_argument(
        "--budget", type=_nonnegative_int, default=None, help="fuzzed batches per cell"
    )
    group.add_argument("--seconds", type=_positive_float, help="time for the whole run")
    s.add_argument("--seed", type=_nonnegative_int, default=None)
    s.add_argument("--out", default="out/results.json")
    s.add_argument("--config", help="policy file (default lossfuzz.toml or [tool.lossfuzz])")
    s.add_argument("--shard", help="K/N: only every N-th cell, from the K-th (see merge)")
    s.add_argument("--resume", action="store_true", help="skip the cells in <out>.journal")
    s.add_argument(
        "--no-contracts",
        action="store_true",
        help="leave the contracts table out of a default campaign",
    )
    s.add_argument(
        "--no-isolation", action="store_true", help="call impls in this process (faster, unsafe)"
    )
    s.add_argument(
        "--timeout", type=_positive_float, default=60.0, help="seconds per impl call (default 60)"
    )
    s.add_argument(
        "--memory-limit",
        type=_gibibytes,
        default=16.0,
        dest="memory_limit",
        help="GiB of address space per worker process (default 16)",
    )
    s.set_defaults(func=cmd_run)

    s = sub.add_parser("contracts", help="check API contracts, special values and pitfalls")
    s.add_argument("--out", default="out/contracts.json")
    s.set_defaults(func=cmd_contracts)

    s = sub.add_parser("merge", help="combine the results files of a sharded run or sweep")
    s.add_argument("results", nargs="+")
    s.add_argument("-o", "--output", default="out/results.json")
    s.set_defaults(func=cmd_merge)

    s = sub.add_parser("sweep", help="check every float of a range exhaustively")
    s.add_argument("--loss", required=True)
    s.add_argument("--impl", action="append", help="impl id (repeatable; default all of the loss)")
    s.add_argument("--dtype", required=True, help="float16, bfloat16 or float32")
    s.add_argument("--labels", default="0,1", help="labels to pair with every input (default 0,1)")
    s.add_argument("--range", help="LO,HI: only inputs in this closed range")
    s.add_argument("--all", action="store_true", help="every finite value (needed for float32)")
    s.add_argument("--chunk", type=_nonnegative_int, default=1 << 20, help="floats per chunk")
    s.add_argument("--jobs", type=_nonnegative_int, default=os.cpu_count() or 1)
    s.add_argument("--shard", help="K/N: only every N-th chunk, from the K-th")
    s.add_argument(
        "--pos-weight",
        type=float,
        default=1.0,
        dest="pos_weight",
        help="pos_weight of a weighted loss (default 1)",
    )
    s.add_argument("--resume", action="store_true", help="skip the chunks in <out>.journal")
    s.add_argument("--out", default="out/sweep.json")
    s.set_defaults(func=cmd_sweep)

    s = sub.add_parser("baseline", help="record a results file's cells as a baseline")
    s.add_argument("results")
    s.add_argument("-o", "--output", default="lossfuzz-baseline.json")
    s.set_defaults(func=cmd_baseline)

    s = sub.add_parser("gate", help="compare results with a baseline: exit 1 on regressions")
    s.add_argument("results")
    s.add_argument("--baseline", required=True)
    s.add_argument("--config", help="policy file (default lossfuzz.toml or [tool.lossfuzz])")
    s.add_argument("--junit", help="also write JUnit XML here")
    s.add_argument("--format", choices=("text", "markdown"), default="text")
    s.set_defaults(func=cmd_gate)

    s = sub.add_parser("report", help="render a results file as HTML or Markdown")
    s.add_argument("results")
    s.add_argument("-o", "--output", help="default out/report.html (Markdown: stdout)")
    s.add_argument("--format", choices=("html", "markdown"), default="html")
    s.add_argument("--no-plots", action="store_true", help="skip the per-cell plots")
    s.set_defaults(func=cmd_report)

    def isolation_options(s) -> None:
        s.add_argument("--no-isolation", action="store_true", help="call impls in this process")
        s.add_argument(
            "--timeout", type=_positive_float, default=60.0, help="seconds per impl call"
        )
        s.add_argument(
            "--memory-limit", type=_gibibytes, default=16.0, dest="memory_limit",
            help="GiB of address space per worker process",
        )  # fmt: skip

    user_help = "re-run findings of this user impl (user code named in a file is never imported)"
    s = sub.add_parser("repro", help="re-run the findings of a results file")
    s.add_argument("results")
    s.add_argument("--finding", type=_nonnegative_int, help="only finding N (0-based)")
    s.add_argument("--impl", action="append", metavar="MODULE:FUNCTION", help=user_help)
    isolation_options(s)
    s.set_defaults(func=cmd_repro)

    s = sub.add_parser("triage", help="one Markdown bug report per distinct cause of findings")
    s.add_argument("results")
    s.add_argument("-o", "--output", default="out/triage", help="directory for the reports")
    s.add_argument("--no-repro", action="store_true", help="do not re-run the findings")
    s.add_argument("--impl", action="append", metavar="MODULE:FUNCTION", help=user_help)
    isolation_options(s)
    s.set_defaults(func=cmd_triage)
    return p


def main(argv: list[str] | None = None) -> int:
    from lossfuzz import oracles

    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and args.command == "oracle" and all("=" in e for e in extra):
        args.inputs += extra  # NAME=VALUE pairs given after an option
    elif extra:
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    try:
        return args.func(args)
    except (UsageError, oracles.DomainError, oracles.UnknownName) as exc:
        print(f"lossfuzz: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("lossfuzz: interrupted", file=sys.stderr)
        return 130
    except WorkerStartError as exc:  # the machine's, not the user's input nor a bug
        print(f"lossfuzz: error: {exc}", file=sys.stderr)
        return EXIT_INTERNAL
    except BrokenPipeError:
        return EXIT_USAGE
    except Exception as exc:  # noqa: BLE001 - a bug in lossfuzz: one line, never exit 1
        if os.environ.get("LOSSFUZZ_DEBUG"):
            raise
        print(
            f"lossfuzz: internal error: {first_line(exc)} (a bug in lossfuzz; "
            "LOSSFUZZ_DEBUG=1 shows the traceback)",
            file=sys.stderr,
        )
        return EXIT_INTERNAL
