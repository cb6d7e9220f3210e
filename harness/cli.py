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
import textwrap

import lossfuzz
from lossfuzz.harness.commands import (
    EXIT_INTERNAL,
    EXIT_USAGE,
    cmd_baseline,
    cmd_contracts,
    cmd_gate,
    cmd_impls,
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
from lossfuzz.harness.userimpl import FRAMEWORKS

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


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Help with each option's default (where it has one) and the examples as written."""

    def _get_help_string(self, action):
        text = action.help or ""
        default = action.default
        if (
            "%(default)" not in text
            and default not in (None, False, argparse.SUPPRESS)
            and not isinstance(action, argparse._StoreFalseAction)
            and not (isinstance(default, list) and not default)
            and action.option_strings
        ):
            text += " (default: %(default)s)"
        return text


class _Parser(argparse.ArgumentParser):
    """Bad usage is one line (what is wrong, and where help is) and exit code 2."""

    def error(self, message: str):
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _sub(sub, name: str, help: str, examples: str):
    return sub.add_parser(
        name,
        help=help,
        description=help[0].upper() + help[1:] + ".",
        epilog="examples:\n" + textwrap.indent(textwrap.dedent(examples).strip("\n"), "  "),
        formatter_class=_Formatter,
    )


def _output(s, default, what: str = "", dest: str = "out", metavar: str = "PATH",
            help: str | None = None) -> None:  # fmt: skip
    s.add_argument("-o", "--output", "--out", dest=dest, default=default, metavar=metavar,
                   help=help or f"where to write {what}")  # fmt: skip


def _isolation(s) -> None:
    s.add_argument(
        "--no-isolation",
        action="store_true",
        help="call impls in this process (faster; a crash ends the run)",
    )
    s.add_argument(
        "--timeout",
        type=_positive_float,
        default=60.0,
        metavar="SECONDS",
        help="seconds an impl call may take before it is a timeout finding",
    )
    s.add_argument("--memory-limit", type=_gibibytes, default=16.0, dest="memory_limit",
                   metavar="GIB", help="GiB of address space per worker process")  # fmt: skip


def _user(s) -> None:
    """How a user's loss (--impl MODULE:FUNCTION) is called, and the inputs in scope."""
    g = s.add_argument_group("your own loss (--impl MODULE:FUNCTION)")
    g.add_argument(
        "--framework",
        choices=FRAMEWORKS,
        help="the framework whose tensors it takes (default: from the modules its "
        "code uses, checked by one call)",
    )
    g.add_argument(
        "--args",
        metavar="INPUT=PARAM,...",
        help="which parameter takes which input, e.g. logits=input,labels=target "
        "(default: by name, else by position)",
    )
    g.add_argument(
        "--reduction",
        choices=("none", "mean", "sum"),
        help="whether it returns a loss per row or its batch's mean or sum "
        "(default: found by calling it)",
    )
    g = s.add_argument_group("the inputs in scope")
    x = g.add_mutually_exclusive_group()
    x.add_argument(
        "--allow-infinity",
        dest="allow_infinity",
        action="store_true",
        default=None,
        help="include infinities, NaN and masked entries (the default)",
    )
    x.add_argument(
        "--finite-only", dest="allow_infinity", action="store_false", help="finite inputs only"
    )
    g.add_argument(
        "--labels",
        dest="label_kind",
        choices=("any", "hard", "soft"),
        default=None,
        help="labels 0 and 1 (one-hot rows), strictly between, or both (default: any)",
    )
    g.add_argument("--min-classes", type=_positive_int, default=None, metavar="N",
                   help="the fewest classes a row may have (default: 1)")  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="lossfuzz",
        description="Numerical-stability fuzzing of cross-entropy losses against an exact "
        "oracle. `lossfuzz COMMAND -h` shows a command's options and examples.",
        epilog="exit codes: 0 done; 1 a regression (gate) or a finding that changed (repro); "
        "2 bad input; 3 an internal error or a worker that cannot start; 130/143 stopped",
    )
    p.add_argument("--version", action="version", version=f"lossfuzz {lossfuzz.__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
    sub.required = True

    s = _sub(sub, "losses", "list the losses the oracle defines, with their formulas",
             "lossfuzz losses")  # fmt: skip
    s.set_defaults(func=cmd_losses)

    s = _sub(sub, "impls", "list the implementations under test", """
        lossfuzz impls --loss sigmoid_cross_entropy_with_logits
        lossfuzz impls --framework torch --format json
        """)  # fmt: skip
    s.add_argument("--loss", help="only impls of this loss (or of a library's variant of it)")
    s.add_argument("--framework", help="only this framework's impls (torch, tf, keras, jax, ...)")
    s.add_argument("--format", choices=("text", "json"), default="text", help="output format")
    s.set_defaults(func=cmd_impls)

    s = _sub(sub, "oracle", "print the exact and correctly rounded value of a loss", """
        lossfuzz oracle sigmoid_cross_entropy_with_logits logits=-50 labels=0 --dtype float32
        lossfuzz oracle softmax_cross_entropy_with_logits 'logits=[[0, -inf]]' 'labels=[[1, 0]]'
        """)  # fmt: skip
    s.add_argument("loss", help="a loss id (lossfuzz losses lists them)")
    s.add_argument(
        "inputs",
        nargs="*",
        metavar="NAME=VALUE",
        help="the inputs: numbers or JSON lists, e.g. logits=-50 labels=0",
    )
    s.add_argument("--dtype", default="float32", help="the dtype the inputs are cast to")
    s.add_argument("--digits", type=_digits, default=25,
                   help="significant digits of the exact value")  # fmt: skip
    s.set_defaults(func=cmd_oracle)

    s = _sub(sub, "run", "fuzz implementations against the oracle and write a results file", """
        lossfuzz run --impl torch:binary_cross_entropy_with_logits --dtype float32 --budget 100
        lossfuzz run --impl mylosses:bce --loss sigmoid_cross_entropy_with_logits
        lossfuzz run --impl 'torch-compile:*' --quantity grad -o out/compiled.json
        lossfuzz run --profile quick
        lossfuzz run --seconds 60 -q
        """)  # fmt: skip
    s.add_argument("--loss", action="append", help="only impls of this loss (repeatable)")
    s.add_argument(
        "--impl",
        action="append",
        metavar="ID",
        help="an impl id, a pattern ('torch-compile:*'), or MODULE:FUNCTION for your "
        "own loss (repeatable; default: every installed impl)",
    )
    s.add_argument(
        "--dtype",
        action="append",
        help="float16, bfloat16, float32 or float64 (repeatable; default: all)",
    )
    s.add_argument(
        "--quantity",
        action="append",
        choices=("value", "grad", "reduction"),
        help="values, gradients or reductions (repeatable; default: all)",
    )
    s.add_argument(
        "--batch",
        action="append",
        type=_positive_int,
        metavar="ROWS",
        help="a reduction cell's batch size (repeatable; default: the profile's: 1000, "
        "and 1000000 too in deep and in a run that names impls or losses)",
    )
    s.add_argument(
        "--jobs",
        "-j",
        type=_positive_int,
        default=os.cpu_count() or 1,
        metavar="N",
        help="cells run at once, each in its own runner process (default: the number of "
        "cores; the results do not depend on it)",
    )
    s.add_argument(
        "--profile",
        choices=("quick", "default", "deep"),
        default=None,
        help="how much a run that names no impl and no loss covers: quick (about a "
        "minute), default (about five minutes on two cores), deep (every cell, 300 batches "
        "each); given, it also sets the budget and batch sizes of a named run "
        "(default: default; a run that names impls or losses runs all their cells)",
    )
    group = s.add_mutually_exclusive_group()
    group.add_argument(
        "--budget",
        type=_nonnegative_int,
        default=None,
        metavar="N",
        help="fuzzed batches per cell after the edge grid (default: the profile's: "
        "quick 10, default 20, deep 300; 100 for a run that names impls or losses)",
    )
    group.add_argument(
        "--seconds",
        type=_positive_float,
        metavar="S",
        help="a time limit for the whole run (results depend on speed)",
    )
    s.add_argument(
        "--seed",
        type=_nonnegative_int,
        default=None,
        help="the campaign seed: the same seed, versions and budget give the same "
        "results (default: 0)",
    )
    _output(s, "out/results.json", "the results file")
    s.add_argument(
        "--config",
        metavar="TOML",
        help="policy file (default: ./lossfuzz.toml or [tool.lossfuzz] of pyproject)",
    )
    s.add_argument("--shard", metavar="K/N", help="only every N-th cell from the K-th (see merge)")
    s.add_argument(
        "--resume", action="store_true", help="skip the cells the journal <output>.journal holds"
    )
    s.add_argument(
        "--no-contracts",
        action="store_true",
        help="leave the contracts table out of a default campaign",
    )
    _isolation(s)
    _user(s)
    s.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    s.add_argument("-v", "--verbose", action="store_true", help="a line per finished cell")
    s.set_defaults(func=cmd_run)

    s = _sub(sub, "contracts", "check API contracts, special values and pitfalls", """
        lossfuzz contracts -o out/contracts.json
        lossfuzz report out/contracts.json -o out/contracts.html
        """)  # fmt: skip
    _output(s, "out/contracts.json", "the tables (a results file)")
    s.set_defaults(func=cmd_contracts)

    s = _sub(sub, "merge", "combine the results files of a sharded run or sweep", """
        lossfuzz merge r1.json r2.json r3.json -o out/results.json
        """)  # fmt: skip
    s.add_argument("results", nargs="+", help="the shards' results files")
    _output(s, "out/results.json", "the merged results")
    s.set_defaults(func=cmd_merge)

    s = _sub(sub, "sweep", "check every float of a range exhaustively", """
        lossfuzz sweep --loss sigmoid_cross_entropy_with_logits --dtype float16
        lossfuzz sweep --loss sigmoid_cross_entropy_with_logits --dtype float32 --range -100,100
        """)  # fmt: skip
    s.add_argument("--loss", required=True, help="an elementwise loss the fast path covers")
    s.add_argument(
        "--impl",
        action="append",
        metavar="ID",
        help="impl id (repeatable; default: every impl of the loss)",
    )
    s.add_argument("--dtype", required=True, help="float16, bfloat16 or float32")
    s.add_argument("--labels", default="0,1", help="labels paired with every input")
    s.add_argument("--range", metavar="LO,HI", help="only inputs in this closed range")
    s.add_argument("--all", action="store_true", help="every finite value (float32 needs it)")
    s.add_argument("--chunk", type=_nonnegative_int, default=1 << 20, help="floats per chunk")
    s.add_argument(
        "--jobs", type=_nonnegative_int, default=os.cpu_count() or 1, help="worker processes"
    )
    s.add_argument("--shard", metavar="K/N", help="only every N-th chunk from the K-th")
    s.add_argument(
        "--pos-weight",
        type=float,
        default=1.0,
        dest="pos_weight",
        help="pos_weight of a weighted loss",
    )
    s.add_argument(
        "--resume", action="store_true", help="skip the chunks the journal <output>.journal holds"
    )
    _output(s, "out/sweep.json", "the results file")
    s.add_argument("-q", "--quiet", action="store_true", help="no progress display")
    s.set_defaults(func=cmd_sweep)  # fmt: skip

    s = _sub(sub, "baseline", "record a results file's cells as a baseline for the gate", """
        lossfuzz baseline out/results.json -o lossfuzz-baseline.json
        """)  # fmt: skip
    s.add_argument("results", help="a results file")
    _output(s, "lossfuzz-baseline.json", "the baseline")
    s.set_defaults(func=cmd_baseline)

    s = _sub(sub, "gate", "compare results with a baseline; exit 1 on a regression", """
        lossfuzz gate out/results.json --baseline lossfuzz-baseline.json
        lossfuzz gate out/results.json --baseline b.json --junitxml out/junit.xml --format markdown
        """)  # fmt: skip
    s.add_argument("results", help="the new results file")
    s.add_argument(
        "--baseline", required=True, metavar="PATH", help="the baseline to judge against"
    )
    s.add_argument(
        "--config",
        metavar="TOML",
        help="policy file (default: ./lossfuzz.toml or [tool.lossfuzz] of pyproject)",
    )
    s.add_argument(
        "--junitxml",
        "--junit",
        dest="junit",
        metavar="PATH",
        help="also write JUnit XML, a test case per cell",
    )
    s.add_argument(
        "--format",
        choices=("text", "markdown"),
        default="text",
        help="text, or Markdown for a CI job summary",
    )
    s.set_defaults(func=cmd_gate)  # fmt: skip

    s = _sub(sub, "report", "render a results file as HTML or Markdown", """
        lossfuzz report out/results.json -o out/report.html
        lossfuzz report out/results.json --format markdown >> "$GITHUB_STEP_SUMMARY"
        """)  # fmt: skip
    s.add_argument("results", help="a results file")
    where = "where to write (default: out/report.html; Markdown: standard output)"
    _output(s, None, dest="output", help=where)
    s.add_argument("--format", choices=("html", "markdown"), default="html", help="output format")
    s.add_argument("--no-plots", action="store_true", help="leave the per-cell plots out")
    s.set_defaults(func=cmd_report)

    user_help = "re-run findings of this user impl (user code named in a file is never imported)"
    s = _sub(sub, "repro", "re-run the findings of a results file", """
        lossfuzz repro out/results.json
        lossfuzz repro out/results.json --finding 3 --impl mylosses:bce
        """)  # fmt: skip
    s.add_argument("results", help="a results file")
    s.add_argument("--finding", type=_nonnegative_int, metavar="N", help="only finding N (0-based)")
    s.add_argument("--impl", action="append", metavar="MODULE:FUNCTION", help=user_help)
    _isolation(s)
    s.set_defaults(func=cmd_repro)

    s = _sub(sub, "triage", "write one Markdown bug report per distinct cause of findings", """
        lossfuzz triage out/results.json -o out/triage
        """)  # fmt: skip
    s.add_argument("results", help="a results file")
    _output(s, "out/triage", dest="output", metavar="DIR", help="the directory for the reports")
    s.add_argument("--no-repro", action="store_true", help="do not re-run the findings")
    s.add_argument("--impl", action="append", metavar="MODULE:FUNCTION", help=user_help)
    _isolation(s)
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
