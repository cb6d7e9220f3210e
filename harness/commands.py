"""What each ``lossfuzz`` subcommand does, given its parsed arguments (``cli.py`` parses).

Each returns the exit code; bad input raises UsageError (exit 2).
"""

from __future__ import annotations

import json
import math
import os
import sys
import time

from lossfuzz.harness.errors import UsageError
from lossfuzz.harness.jsonio import OutputLock
from lossfuzz.harness.ulp import format_ulp
from lossfuzz.reports.escape import terminal

EXIT_OK, EXIT_FINDINGS, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3


def _parse_value(name: str, text: str):
    try:
        return json.loads(text)  # numbers, nested lists, NaN, Infinity, -Infinity
    except (json.JSONDecodeError, ValueError, RecursionError):
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


def _check_writable(path: str, inputs=()) -> None:
    """An output path lossfuzz may write: not empty, not a directory or device, in a
    writable directory, and none of the command's inputs (after resolving links)."""
    if not path:
        raise UsageError("an output path is empty")
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
    target = os.path.realpath(path)
    for source in inputs:
        if source and os.path.exists(source) and os.path.realpath(source) == target:
            raise UsageError(f"{path} is also an input of this command; it would be overwritten")


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


def _pair(text: str, what: str) -> tuple[float, float]:
    parts = text.split(",")
    try:
        a, b = (float(p) for p in parts)
    except ValueError:
        raise UsageError(f"{what} {text!r}: expected two numbers, LO,HI") from None
    if not a <= b:
        raise UsageError(f"{what} {text!r}: LO must be <= HI")
    return a, b


class StopOnSignal:
    """While a run is under way, SIGINT and SIGTERM set the engine's stop flag: the run
    ends at the next case (an exception raised from the handler could land inside
    Hypothesis or a framework), and the finished cells are written before the process
    ends. A second Ctrl-C stops at once."""

    def __init__(self, stop):
        self.stop = stop

    @property
    def signum(self):
        return self.stop.signum

    @property
    def signame(self) -> str:
        import signal

        return signal.Signals(self.stop.signum).name

    def __enter__(self):
        import signal

        def handler(signum, frame):
            if self.stop and signum == signal.SIGINT:
                raise KeyboardInterrupt
            self.stop.set(signum)

        self._old = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
        return self

    def __exit__(self, *exc):
        import signal

        for s, old in self._old.items():
            signal.signal(s, old)
        return False


def _describe(args, policy) -> dict:
    """{MODULE:FUNCTION: Description} for the user impls of the run: the policy's
    ``[user_impls."MODULE:FUNCTION"]`` tables, the command line's options over them."""
    from lossfuzz.harness.userimpl import Description, parse_args

    out = {}
    for spec in args.impl or ():
        if ":" not in spec or "*" in spec:
            continue
        table = policy.user_impls.get(spec, {})
        given = parse_args(args.args) if args.args else tuple(table.get("args", {}).items())
        framework = args.framework or table.get("framework")
        out[spec] = Description(
            spec,
            (args.loss or [""])[0],
            framework,
            given,
            args.reduction or table.get("reduction"),
            framework_given=framework is not None,
        )
    return out


def _scope(args, policy):
    from lossfuzz.harness.strategies import Scope

    allow = args.allow_infinity if args.allow_infinity is not None else policy.allow_infinity
    return Scope(
        allow_infinity=True if allow is None else allow,
        labels=args.label_kind or policy.labels or "any",
        min_classes=args.min_classes or policy.min_classes or 1,
    )


def cmd_run(args) -> int:
    from lossfuzz.harness import campaign, profiles
    from lossfuzz.harness.policy import load_policy
    from lossfuzz.harness.scoring import Engine, Stop

    policy = load_policy(args.config)
    args.loss = args.loss or policy.losses
    args.impl = args.impl or policy.impls
    args.dtype = args.dtype or policy.dtypes
    args.quantity = args.quantity or policy.quantities or list(campaign.QUANTITIES)
    named = bool(args.loss or args.impl)
    profile = None
    if args.profile is not None or not named:
        profile = profiles.get(args.profile or profiles.DEFAULT)
    if args.budget is None:
        default = profile.budget if profile is not None else campaign.DEFAULT_BUDGET
        default = policy.budget if policy.budget is not None else default
        args.budget = default if args.seconds is None else 10**9
    if args.seed is None:
        args.seed = policy.seed if policy.seed is not None else 0
    default_batches = profile.batches if profile is not None else campaign.DEFAULT_BATCHES
    batches = tuple(args.batch or policy.batches or default_batches)
    k, n = _shard(args.shard)
    scope = _scope(args, policy)
    stop = Stop()
    isolation = None
    if args.no_isolation:
        engine = Engine(stop=stop)
    else:
        from lossfuzz.harness.isolation import Isolation

        isolation = Isolation(args.timeout, int(args.memory_limit * 2**30), lambda: bool(stop))
        engine = Engine.isolated(isolation, stop)
    try:
        selection = campaign.select(
            args.loss or (),
            args.impl or (),
            args.dtype or (),
            tuple(args.quantity),
            batches,
            scope=scope,
            described=_describe(args, policy),
            caller=engine.caller,  # a user's loss is called once before it is fuzzed
            opt_in=profile.opt_in if profile is not None and profile.opt_in else None,
        )
        if profile is not None and not named:
            selection.cells = [c for c in selection.cells if profile.keeps(c)]
        args.profile_name = profile.name if profile is not None and not named else None
        for reason in dict.fromkeys(s.reason for s in selection.skipped):
            print(f"skipped: {reason}", file=sys.stderr)
        if not selection.cells:
            raise UsageError("no cells to run: the selection matches no installed impl")
        _check_writable(args.out, [args.config or "lossfuzz.toml", "pyproject.toml"])
        selection.cells = selection.cells[k - 1 :: n]  # every N-th cell: merge interleaves them
        shard = (k, n) if n > 1 else None
        with OutputLock(args.out):
            return _run_locked(args, selection, shard, n, engine, stop)
    finally:
        if isolation is not None:
            isolation.stop()


def _run_locked(args, selection, shard, n, engine, stop) -> int:
    from lossfuzz.harness import campaign, journal
    from lossfuzz.harness.jsonio import write_json_atomic
    from lossfuzz.harness.progress import Progress
    from lossfuzz.reports.terminal import summary_table

    plan = journal.plan_key(selection, args.seed, args.budget, campaign.DEFAULT_TOLERANCE)
    jpath = journal.path_for(args.out)
    done = journal.read(jpath, plan) if args.resume else {}
    if done:
        print(f"resuming: {len(done)} of {len(selection.cells)} cells are done", file=sys.stderr)
    writer = journal.Writer(jpath, plan, append=bool(done))
    last = {"t": -math.inf}  # the first finished cell is written at once
    progress = Progress(len(selection.cells), quiet=args.quiet, verbose=args.verbose)
    progress.done = len(done)

    def on_cell(key, record, findings, partial):
        writer.cell(key, record, findings)
        if time.monotonic() - last["t"] >= journal.PARTIAL_EVERY:
            write_json_atomic(
                args.out, partial().replace(shard=shard, profile=args.profile_name).to_json()
            )
            last["t"] = time.monotonic()
        acc = record.accuracy
        progress.finished(
            key.name,
            len(findings),
            f"{record.cases} cases, max {format_ulp(acc.max_ulp)} ULP at finite inputs, "
            f"{len(findings)} findings ({record.seconds:.1f} s)",
        )

    try:
        with StopOnSignal(stop) as signals:
            data = campaign.run(
                selection,
                engine=engine,
                budget=args.budget,
                seconds=args.seconds,
                seed=args.seed,
                progress=lambda i, total, name: progress.started(name),
                done=done,
                on_cell=on_cell,
                jobs=args.jobs,
                isolation=None
                if args.no_isolation
                else (args.timeout, int(args.memory_limit * 2**30)),
            )
    finally:
        progress.close()
    data = data.replace(shard=shard, profile=args.profile_name)
    if signals.signum is not None:
        write_json_atomic(args.out, data.to_json())
        writer.close()
        print(
            f"lossfuzz: stopped by {signals.signame}; {args.out} holds the {len(data.cells)} "
            "finished cells (incomplete); `lossfuzz run --resume` with the same arguments "
            "goes on",
            file=sys.stderr,
        )
        return 128 + signals.signum
    write_json_atomic(args.out, data.to_json())
    writer.close(remove=True)
    if not (args.loss or args.impl or args.dtype or args.no_contracts) and n == 1:
        from lossfuzz.harness import contracts

        # the default campaign reports them too; written after the cells are safe on disk,
        # since these calls run in this process
        data = data.replace(contracts=contracts.run())
        write_json_atomic(args.out, data.to_json())
    print(summary_table(data))
    documented = sum(1 for f in data.findings if f.documented)
    print(
        f"\n{len(data.cells)} cells, {sum(c.cases for c in data.cells)} cases, "
        f"{len(data.findings)} findings ({documented} documented) in "
        f"{data.elapsed_seconds:.0f} s; wrote {args.out}"
        + ("" if data.complete else " (INCOMPLETE: the time ran out)")
    )
    dead = [c.key.name for c in data.cells if c.cases and c.counts.get("error") == c.cases]
    if dead and all(c.impl.startswith("user:") for c in data.cells if c.key.name in dead):
        raise UsageError(
            f"every case of {dead[0]} raised (first: "
            f"{next((f.error for f in data.findings if f.key.name == dead[0]), '?')}); "
            "check how the function is called (--args, --framework, --reduction)"
        )
    return EXIT_OK


def cmd_impls(args) -> int:
    from lossfuzz import oracles
    from lossfuzz.harness.registry import load_all, skipped_reason
    from lossfuzz.oracles.registry import UnknownName

    if args.loss:
        oracles.get_loss(args.loss)
    impls = load_all().values()
    frameworks = {impl.framework or impl.backend for impl in impls} | {i.backend for i in impls}
    if args.framework and args.framework not in frameworks:
        raise UnknownName("framework", args.framework, sorted(frameworks))
    rows = []
    for impl in impls:
        spec = oracles.get_loss(impl.loss)
        if args.loss and args.loss not in (spec.id, spec.variant_of):
            continue
        framework = impl.framework or impl.backend
        if args.framework and args.framework not in (framework, impl.backend):
            continue
        rows.append(
            {
                "id": impl.id,
                "loss": impl.loss,
                "framework": framework,
                "mode": impl.mode or "eager",
                "dtypes": list(impl.dtypes),
                "gradients": list(impl.gradients),
                "available": skipped_reason(impl) is None,
                "skipped": skipped_reason(impl),
                "deviations": [
                    {"what": d.what, "source": d.source, "documented": d.documented}
                    for d in impl.deviations
                ],
            }
        )
    if not rows:
        raise UsageError("no impl matches; `lossfuzz impls` lists them all")
    if args.format == "json":
        print(json.dumps(rows, indent=1))
        return EXIT_OK
    width = max(len(r["id"]) for r in rows)
    print(f"{'impl':<{width}}  {'loss':<44} {'from':<6} {'mode':<13} dtypes")
    for r in rows:
        state = "" if r["available"] else f"  skipped: {r['skipped']}"
        n = len(r["deviations"])
        devs = f"  [{n} deviation{'s' if n > 1 else ''}]" if n else ""
        print(
            f"{r['id']:<{width}}  {r['loss']:<44} {r['framework']:<6} {r['mode']:<13} "
            f"{','.join(d.replace('float', 'f') for d in r['dtypes'])}{devs}{state}"
        )
    skipped = sum(not r["available"] for r in rows)
    print(f"{len(rows)} impls, {len(rows) - skipped} available here", file=sys.stderr)
    return EXIT_OK


def cmd_sweep(args) -> int:
    from lossfuzz import oracles
    from lossfuzz.harness import sweep
    from lossfuzz.harness.jsonio import write_json_atomic
    from lossfuzz.harness.registry import get_impl, load_all, skipped_reason
    from lossfuzz.oracles import fast
    from lossfuzz.reports.terminal import summary_table

    spec = oracles.get_loss(args.loss)
    try:
        oracles.get_format(args.dtype)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if spec.shape != "elementwise" or not fast.covers(spec.id, args.dtype):  # rows: no sweep
        raise UsageError(
            f"a sweep needs the fast reference path, which covers {', '.join(sorted(fast.FAST))} "
            f"in {', '.join(fast.TARGETS)} and float64; not {spec.id} in {args.dtype}"
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
    if "pos_weight" in spec.params and not (0.0 <= args.pos_weight < math.inf):
        raise UsageError(f"--pos-weight {args.pos_weight!r}: must be finite and >= 0")
    if args.dtype == "float32" and args.range is None and not args.all:
        raise UsageError("float32 has 2**32 values: give --range LO,HI or --all")
    if args.dtype == "float64" and (args.range is None or args.all):
        raise UsageError("float64 has 2**64 values, too many to sweep: give --range LO,HI")
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
        spec.id, tuple(chosen), args.dtype, labels, lo, hi, args.chunk, shard, args.pos_weight
    )
    _check_writable(args.out)
    show = None
    if sys.stderr.isatty():

        def show(n, total):
            sys.stderr.write(f"\r\033[K[{n}/{total} chunks]")
            sys.stderr.flush()

    with OutputLock(args.out):
        data = sweep.run(plan, args.out, jobs=args.jobs, resume=args.resume, progress=show)
    if sys.stderr.isatty():
        sys.stderr.write("\r\033[K")
    write_json_atomic(args.out, data.to_json())
    if data.complete:
        os.unlink(sweep.journal_path(args.out))  # every chunk is in the results now
    print(summary_table(data))
    elements = sum(c.cases for c in data.cells)
    print(
        f"\n{len(data.cells)} impls, {elements} elements, {len(data.findings)} findings "
        f"in {data.elapsed_seconds:.0f} s; wrote {args.out}"
        + ("" if data.complete else " (INCOMPLETE: some chunks are not done)")
    )
    return EXIT_OK


def cmd_contracts(args) -> int:
    from lossfuzz.harness import contracts
    from lossfuzz.harness.campaign import versions
    from lossfuzz.harness.jsonio import write_json_atomic
    from lossfuzz.harness.results import Results, now

    _check_writable(args.out)
    table = contracts.run()
    data = Results(created=now(), seed=None, budget=None, versions=versions(), contracts=table)
    write_json_atomic(args.out, data.to_json())
    silent = [r for r in table.contracts if r.silent]
    for r in silent:
        print(f"{r.impl}: {r.check} ({r.input}): {r.observed}: {r.verdict}")
    print(
        f"{len(table.contracts)} contract checks ({len(silent)} silent), "
        f"{len(table.special_values)} special values, {len(table.pitfalls)} pitfalls; "
        f"wrote {args.out}"
    )
    return EXIT_OK


def cmd_merge(args) -> int:
    from lossfuzz.harness import merge
    from lossfuzz.harness.jsonio import write_json_atomic
    from lossfuzz.harness.results import Results

    _check_writable(args.out, args.results)
    files = [(path, Results.load(path)) for path in args.results]
    merged, warnings = merge.merge(files)
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    write_json_atomic(args.out, merged.to_json())
    print(
        f"merged {len(files)} shards: {len(merged.cells)} cells, "
        f"{len(merged.findings)} findings; wrote {args.out}"
    )
    return EXIT_OK


def cmd_baseline(args) -> int:
    from lossfuzz.harness import gate
    from lossfuzz.harness.jsonio import write_json_atomic
    from lossfuzz.harness.results import Results

    _check_writable(args.out, [args.results])
    data = Results.load(args.results)
    write_json_atomic(args.out, gate.baseline(data).to_json())
    print(f"{args.out}: {len(data.cells)} cells")
    return EXIT_OK


def cmd_gate(args) -> int:
    from lossfuzz.harness import gate
    from lossfuzz.harness.jsonio import write_text_atomic
    from lossfuzz.harness.policy import load_policy
    from lossfuzz.harness.results import Results

    if args.junit:
        _check_writable(args.junit, [args.results, args.baseline, args.config])
    data = Results.load(args.results)
    base = gate.Baseline.load(args.baseline)
    policy = load_policy(args.config)
    verdict = gate.compare(data, base, policy)
    for warning in verdict.warnings:
        print(f"lossfuzz: warning: {warning}", file=sys.stderr)
    if args.junit:
        from lossfuzz.reports.junit import junit

        write_text_atomic(args.junit, junit(data, verdict))
    print(gate.markdown(verdict) if args.format == "markdown" else gate.table(verdict))
    return verdict.exit_code


def _engine(args):
    """The Engine and the Isolation (or None) that --no-isolation, --timeout and
    --memory-limit ask for."""
    from lossfuzz.harness.isolation import Isolation
    from lossfuzz.harness.scoring import Engine

    if args.no_isolation:
        return Engine(), None
    isolation = Isolation(args.timeout, int(args.memory_limit * 2**30))
    return Engine.isolated(isolation), isolation


def cmd_repro(args) -> int:
    """Re-run findings. Nothing named in the file is imported: a user's impl
    (``user:MOD:FN``) is re-run only when ``--impl MOD:FN`` names it; every impl runs in
    worker processes with the run's timeout, so a crash or an exit is an outcome."""
    from lossfuzz.harness.findings import message
    from lossfuzz.harness.rerun import rerun
    from lossfuzz.harness.results import Results

    data = Results.load(args.results)
    findings = data.findings
    if args.finding is not None:
        if not 0 <= args.finding < len(findings):
            raise UsageError(
                f"--finding {args.finding}: the file has {len(findings)} findings "
                f"(0..{len(findings) - 1})"
            )
        chosen = [(args.finding, findings[args.finding])]
    else:
        chosen = list(enumerate(findings))
    engine, isolation = _engine(args)
    changed, skipped = 0, []
    try:
        for i, f in chosen:
            out = rerun(engine, f, frozenset(args.impl or ()), data.user_impls)
            if out.status == "not re-run":
                skipped.append(f.impl)
                print(f"[{i}] not re-run ({out.why}): {terminal(f.message)}")
                continue
            changed += not out.reproduces
            verdict = "reproduces" if out.reproduces else f"changed: now {out.observation.cls}"
            text = message(out.impl, f.dtype, out.observation, f.quantity)
            print(f"[{i}] {verdict}: {terminal(text)}")
    finally:
        if isolation is not None:
            isolation.stop()
    ran = len(chosen) - len(skipped)
    more = f" ({len(skipped)} more not re-run)" if skipped else ""
    print(f"{ran - changed} of {ran} findings reproduce{more}")
    if changed:
        return EXIT_FINDINGS
    if skipped:
        names = ", ".join(sorted({s[5:] for s in skipped if s.startswith("user:")}))
        hint = f": name their code with --impl ({names})" if names else ""
        raise UsageError(f"{len(skipped)} findings were not re-run{hint}")
    return EXIT_OK


def cmd_triage(args) -> int:
    from lossfuzz.harness import triage
    from lossfuzz.harness.results import Results

    if os.path.exists(args.output) and not os.path.isdir(args.output):
        raise UsageError(f"{args.output} exists and is not a directory")
    data = Results.load(args.results)
    bugs = triage.bugs(data)
    if args.no_repro:
        checked = {}
    else:
        engine, isolation = _engine(args)
        try:
            checked = triage.recheck(engine, bugs, frozenset(args.impl or ()), data.user_impls)
        finally:
            if isolation is not None:
                isolation.stop()
    paths = triage.write(args.output, data, bugs, checked, source=args.results)
    real = sum(1 for b in bugs if not b.documented)
    print(
        f"{len(bugs)} distinct causes ({real} bugs, {len(bugs) - real} documented behaviour) "
        f"from {len(data.findings)} findings; wrote {paths[0]} and {len(paths) - 1} reports"
    )
    return EXIT_OK


def cmd_report(args) -> int:
    from lossfuzz.harness.jsonio import write_text_atomic
    from lossfuzz.harness.results import Results

    out = args.output
    if args.format == "html" or out is not None:
        out = out if out is not None else "out/report.html"
        _check_writable(out, [args.results])
    data = Results.load(args.results)
    if args.format == "markdown":
        from lossfuzz.reports.markdown import markdown

        text = markdown(data)
        if out is None:
            sys.stdout.write(text)
            return EXIT_OK
    else:
        from lossfuzz.reports.render import html

        text = html(data, plots=not args.no_plots)
    write_text_atomic(out, text)
    print(out)
    return EXIT_OK
