"""The ``lossfuzz`` command line.

Every failure that is the user's (an unknown name, a malformed value, an input
outside a loss's domain) prints one line on stderr and exits 2, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from lossfuzz.harness.errors import UsageError

import lossfuzz

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE = 0, 1, 2


def _parse_value(name: str, text: str):
    try:
        return json.loads(text)  # numbers, nested lists, NaN, Infinity, -Infinity
    except json.JSONDecodeError:
        lowered = text.strip().lower()
        if lowered in ("inf", "+inf", "-inf", "nan"):
            return float(lowered)
        raise UsageError(f"{name}={text!r} is not a number or a JSON list of numbers") from None


def cmd_losses(args) -> int:
    from lossfuzz import oracles

    rows = sorted(oracles.losses().values(), key=lambda s: (s.variant_of is not None, s.id))
    width = max(len(s.id) for s in rows)
    for spec in rows:
        tag = f"  (variant of {spec.variant_of})" if spec.variant_of else ""
        print(f"{spec.id:<{width}}  {', '.join(spec.inputs):<40} {spec.formula}{tag}")
    return EXIT_OK


def cmd_oracle(args) -> int:
    import mpmath
    import numpy as np

    from lossfuzz import oracles

    inputs = {}
    for item in args.inputs:
        name, sep, text = item.partition("=")
        if not sep:
            raise UsageError(f"expected NAME=VALUE, got {item!r}")
        inputs[name] = _parse_value(name, text)
    try:
        ev = oracles.evaluate(args.loss, args.dtype, **inputs)
    except (oracles.DomainError, oracles.UnknownName):
        raise
    except (TypeError, ValueError) as exc:  # wrong input names, shapes or dtype: the user's
        raise UsageError(str(exc)) from None
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
    if not value > 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number of seconds")
    return value


def cmd_run(args) -> int:
    import math
    import time

    from lossfuzz.harness import campaign, gate, journal, results

    policy = gate.load_policy(args.config)
    args.loss = args.loss or policy.losses
    args.impl = args.impl or policy.impls
    args.dtype = args.dtype or policy.dtypes
    args.quantity = args.quantity or policy.quantities or list(campaign.QUANTITIES)
    if args.budget is None:
        default = policy.budget if policy.budget is not None else campaign.DEFAULT_BUDGET
        args.budget = default if args.seconds is None else 10**9
    if args.seed is None:
        args.seed = policy.seed if policy.seed is not None else 0
    batches = tuple(args.batch or policy.batches or campaign.DEFAULT_BATCHES)
    selection = campaign.select(
        args.loss or (), args.impl or (), args.dtype or (), tuple(args.quantity), batches
    )
    for reason in dict.fromkeys(s["reason"] for s in selection.skipped):
        print(f"skipped: {reason}", file=sys.stderr)
    if not selection.cells:
        raise UsageError("no cells to run: the selection matches no installed impl")
    k, n = _shard(args.shard)
    selection.cells = selection.cells[k - 1 :: n]  # every N-th cell: merge interleaves them back
    _check_writable(args.out)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    shard = {"shard": {"index": k, "count": n}} if n > 1 else {}
    plan = journal.plan_key(selection, args.seed, args.budget, campaign.DEFAULT_TOLERANCE)
    jpath = journal.path_for(args.out)
    done = journal.read(jpath, plan) if args.resume else {}
    if done:
        print(f"resuming: {len(done)} of {len(selection.cells)} cells are done", file=sys.stderr)
    writer = journal.Writer(jpath, plan, append=bool(done))
    last = {"t": -math.inf, "partial": None}  # the first finished cell is written at once

    def on_cell(name, record, findings, partial):
        writer.cell(name, record, findings)
        last["partial"] = partial
        if time.monotonic() - last["t"] >= journal.PARTIAL_EVERY:
            results.write_atomic(args.out, partial() | shard)
            last["t"] = time.monotonic()

    isolation = None
    if not args.no_isolation:
        from lossfuzz.harness.isolation import Isolation

        isolation = Isolation(args.timeout, int(args.memory_limit * 2**30))
    try:
        with _StopOnSignal() as stop:
            data = campaign.run(
                selection,
                budget=args.budget,
                seconds=args.seconds,
                seed=args.seed,
                progress=campaign.progress_bar(),
                isolation=isolation,
                done=done,
                on_cell=on_cell,
            )
    finally:
        if isolation is not None:
            isolation.stop()
    if stop.signum is not None:
        results.write_atomic(args.out, data | shard)
        writer.close()
        print(
            f"\nlossfuzz: stopped by {stop.signame}; {args.out} holds the {len(data['cells'])} "
            "finished cells (incomplete); `lossfuzz run --resume` with the same arguments "
            "goes on",
            file=sys.stderr,
        )
        return 128 + stop.signum
    if sys.stderr.isatty():
        sys.stderr.write("\r\033[K")
    results.write_atomic(args.out, data | shard)
    writer.close(remove=True)
    if not (args.loss or args.impl or args.dtype or args.no_contracts) and n == 1:
        from lossfuzz.harness import contracts

        # the default campaign reports them too; written after the cells are safe on disk,
        # since these calls run in this process
        data["contracts"] = contracts.run()
        results.write_atomic(args.out, data)
    print(campaign.summary_table(data))
    count = len(data["findings"])
    documented = sum(1 for f in data["findings"] if f["documented"])
    print(
        f"\n{len(data['cells'])} cells, {sum(c['cases'] for c in data['cells'])} cases, "
        f"{count} findings ({documented} documented) in {data['elapsed_seconds']:.0f} s; "
        f"wrote {args.out}"
    )
    return EXIT_OK


class _StopOnSignal:
    """While a run is under way, SIGINT and SIGTERM end it at the next case (an exception
    raised from the handler could land inside Hypothesis or a framework); the finished
    cells are then written before the process ends."""

    signum: int | None = None

    @property
    def signame(self) -> str:
        import signal

        return signal.Signals(self.signum).name

    def __enter__(self):
        import signal

        from lossfuzz.harness import runner

        runner.STOP["signal"] = None

        def handler(signum, frame):
            if self.signum is not None and signum == signal.SIGINT:
                raise KeyboardInterrupt  # a second Ctrl-C: stop now
            self.signum = signum
            runner.STOP["signal"] = signum

        self._old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc):
        import signal

        for s, old in self._old.items():
            signal.signal(s, old)
        return False


def _pair(text: str, what: str) -> tuple[float, float]:
    parts = text.split(",")
    try:
        a, b = (float(p) for p in parts)
    except ValueError:
        raise UsageError(f"{what} {text!r}: expected two numbers, LO,HI") from None
    if not a <= b:
        raise UsageError(f"{what} {text!r}: LO must be <= HI")
    return a, b


def _shard(text: str | None) -> tuple[int, int]:
    if text is None:
        return (1, 1)
    k, sep, n = text.partition("/")
    try:
        k, n = int(k), int(n)
    except ValueError:
        raise UsageError(f"--shard {text!r}: expected K/N, e.g. 2/4") from None
    if not sep or not 1 <= k <= n:
        raise UsageError(f"--shard {text!r}: expected K/N with 1 <= K <= N")
    return k, n


def cmd_sweep(args) -> int:
    import os

    from lossfuzz.harness import campaign, results, sweep
    from lossfuzz.harness.registry import get_impl, load_all, skipped_reason
    from lossfuzz.oracles import fast

    from lossfuzz import oracles

    spec = oracles.get_loss(args.loss)
    try:
        oracles.get_format(args.dtype)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if not fast.covers(spec.id, args.dtype):
        raise UsageError(
            f"a sweep needs the fast reference path, which covers {', '.join(sorted(fast.FAST))} "
            f"in {', '.join(fast.TARGETS)}; not {spec.id} in {args.dtype}"
        )
    labels: tuple = ()
    if spec.labels:
        try:
            labels = tuple(float(v) for v in args.labels.split(","))
        except ValueError:
            raise UsageError(f"--labels {args.labels!r}: expected numbers, e.g. 0,1") from None
        bad = [z for z in labels if not 0.0 <= z <= 1.0]
        if bad:
            raise UsageError(f"--labels: {bad[0]!r} is outside [0, 1]")
    if args.dtype == "float32" and args.range is None and not args.all:
        raise UsageError("float32 has 2**32 values: give --range LO,HI or --all")
    value_range = None if args.all or args.range is None else _pair(args.range, "--range")
    lo, hi = sweep.ordinal_range(args.dtype, value_range, spec.primary)
    if args.chunk < 1:
        raise UsageError("--chunk must be >= 1")
    shard = _shard(args.shard)
    if args.impl:
        impls = [get_impl(i) for i in args.impl]
        for impl in impls:
            if impl.loss != spec.id:
                raise UsageError(f"{impl.id} computes {impl.loss}, not {spec.id}")
    else:
        impls = [i for i in load_all().values() if i.loss == spec.id]
    chosen = []
    for impl in impls:
        reason = skipped_reason(impl)
        if reason:
            print(f"skipped: {reason}", file=sys.stderr)
        elif args.dtype not in impl.dtypes:
            print(f"skipped: {impl.id} does not take {args.dtype}", file=sys.stderr)
        else:
            chosen.append(impl.id)
    if not chosen:
        raise UsageError("no impl to sweep: none of the selection is installed for this dtype")
    plan = sweep.Plan(
        spec.id,
        tuple(chosen),
        args.dtype,
        labels,
        lo,
        hi,
        args.chunk,
        shard,
        args.pos_weight,
    )
    _check_writable(args.out)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    show = None
    if sys.stderr.isatty():

        def show(n, total):
            sys.stderr.write(f"\r\033[K[{n}/{total} chunks]")
            sys.stderr.flush()

    data = sweep.run(plan, args.out, jobs=args.jobs, resume=args.resume, progress=show)
    if sys.stderr.isatty():
        sys.stderr.write("\r\033[K")
    results.write_atomic(args.out, data)
    if data["complete"]:
        os.unlink(sweep.journal_path(args.out))  # every chunk is in the results now
    print(campaign.summary_table(data))
    elements = sum(c["cases"] for c in data["cells"])
    print(
        f"\n{len(data['cells'])} impls, {elements} elements, {len(data['findings'])} findings "
        f"in {data['elapsed_seconds']:.0f} s; wrote {args.out}"
        + ("" if data["complete"] else " (INCOMPLETE: some chunks are not done)")
    )
    return EXIT_OK


def cmd_contracts(args) -> int:
    from lossfuzz.harness import contracts, results

    _check_writable(args.out)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    table = contracts.run()
    data = {
        "schema": results.SCHEMA,
        "created": results.now(),
        "seed": None,
        "budget": None,
        "versions": results.versions(),
        "complete": True,
        "skipped": [],
        "cells": [],
        "findings": [],
        "contracts": table,
    }
    results.write_atomic(args.out, data)
    silent = [r for r in table["contracts"] if r["verdict"].startswith("SILENT")]
    for r in silent:
        print(f"{r['impl']}: {r['check']} ({r['input']}): {r['observed']}: {r['verdict']}")
    print(
        f"{len(table['contracts'])} contract checks ({len(silent)} silent), "
        f"{len(table['special_values'])} special values, {len(table['pitfalls'])} pitfalls; "
        f"wrote {args.out}"
    )
    return EXIT_OK


def cmd_merge(args) -> int:
    from lossfuzz.harness import merge, results

    files = [(path, results.load(path)) for path in args.results]
    merged, warnings = merge.merge(files)
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    _check_writable(args.output)
    results.write_atomic(args.output, merged)
    print(
        f"merged {len(files)} shards: {len(merged['cells'])} cells, "
        f"{len(merged['findings'])} findings; wrote {args.output}"
    )
    return EXIT_OK


def _check_writable(path: str) -> None:
    import os

    directory = os.path.dirname(os.path.abspath(path)) or "."
    try:
        os.makedirs(directory, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror}") from None
    if os.path.exists(path) and not os.path.isfile(path):
        # an atomic write renames over the path: never over a directory or a device
        raise UsageError(f"cannot write {path}: not a regular file")
    if not os.access(directory, os.W_OK):
        raise UsageError(f"cannot write {path}: directory not writable")


def cmd_baseline(args) -> int:
    from lossfuzz.harness import gate, results

    data = results.load(args.results)
    _check_writable(args.output)
    results.write_atomic(args.output, gate.baseline(data))
    print(f"{args.output}: {len(data['cells'])} cells")
    return EXIT_OK


def cmd_gate(args) -> int:
    from lossfuzz.harness import gate, results

    data = results.load(args.results)
    base = gate.load_baseline(args.baseline)
    policy = gate.load_policy(args.config)
    verdict = gate.compare(data, base, policy)
    for warning in verdict.warnings:
        print(f"lossfuzz: warning: {warning}", file=sys.stderr)
    if args.junit:
        from lossfuzz.reports.junit import junit

        _check_writable(args.junit)
        results.write_text_atomic(args.junit, junit(data, verdict))
    print(gate.markdown(verdict) if args.format == "markdown" else gate.table(verdict))
    return verdict.exit_code


def cmd_repro(args) -> int:
    from lossfuzz.harness import campaign, results
    from lossfuzz.harness.registry import get_impl, user_impl
    from lossfuzz.harness.runner import reduction_tolerance, score

    data = results.load(args.results)
    findings = data["findings"]
    if args.finding is not None:
        if not 0 <= args.finding < len(findings):
            raise UsageError(
                f"--finding {args.finding}: the file has {len(findings)} findings "
                f"(0..{len(findings) - 1})"
            )
        chosen = [(args.finding, findings[args.finding])]
    else:
        chosen = list(enumerate(findings))
    changed = 0
    for i, f in chosen:
        impl_id = f["impl"]
        impl = (
            user_impl(impl_id.partition(":")[2], f["loss"])
            if impl_id.startswith("user:")
            else get_impl(impl_id)
        )
        inputs = results.decode_inputs(f["inputs"], f["dtype"])
        wrt, reduce = f.get("wrt"), results.reduce_of(f)
        tolerance = 4.0 if reduce is None else reduction_tolerance(4.0, reduce[1])
        observations = score(impl, f["dtype"], inputs, tolerance, wrt, reduce=reduce)
        o = observations[f["index"]] if f["index"] < len(observations) else observations[0]
        same = o.cls == f["class"] and (
            o.error is not None
            if f["got"] is None
            else o.got is not None and results.hexfloat(o.got) == f["got"]
        )
        changed += not same
        verdict = "reproduces" if same else f"changed: now {o.cls}"
        print(f"[{i}] {verdict}: {campaign.message(impl, f['dtype'], o, wrt, reduce)}")
    print(f"{len(chosen) - changed} of {len(chosen)} findings reproduce")
    return EXIT_OK if not changed else EXIT_FINDINGS


def cmd_report(args) -> int:
    from lossfuzz.harness import results

    data = results.load(args.results)
    if args.format == "markdown":
        from lossfuzz.reports.markdown import markdown

        text = markdown(data)
        if args.output is None:
            sys.stdout.write(text)
            return EXIT_OK
    else:
        from lossfuzz.reports.render import html

        text = html(data, plots=not args.no_plots)
    out = args.output or "out/report.html"
    _check_writable(out)
    results.write_text_atomic(out, text)
    print(out)
    return EXIT_OK


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
    s.add_argument("--digits", type=int, default=25, help="significant digits of the exact value")
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
        type=_positive_float,
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
    s.add_argument("--pos-weight", type=float, default=1.0, dest="pos_weight")
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

    s = sub.add_parser("repro", help="re-run the findings of a results file")
    s.add_argument("results")
    s.add_argument("--finding", type=_nonnegative_int, help="only finding N (0-based)")
    s.set_defaults(func=cmd_repro)
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
