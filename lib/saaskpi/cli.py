"""`saaskpi demo | import | validate | metrics | table | snapshot | fill | send | compare | docs | app`."""

from __future__ import annotations

import argparse
import json
import re
import sys
import time

import pandas as pd

from . import paths
from .app import IDLE_TIMEOUT, MAX_KERNELS
from .errors import ParameterError, SaasKpiError

DEFAULT_SOURCE = "data/demo"


def _ensure_demo(source: str) -> None:
    """Generate the demo data when the default source is asked for and missing."""
    if paths.resolve(source) == paths.DEMO_DIR and not paths.DEMO_DIR.exists():
        from .demo import generate

        print("Demo data missing: generating it in data/demo ...", file=sys.stderr)
        generate(paths.DEMO_DIR, progress=sys.stderr.isatty())


def _emit(frame: pd.DataFrame, fmt: str) -> None:
    frame = frame.copy()
    for col in frame.columns:
        if pd.api.types.is_datetime64_any_dtype(frame[col]):
            frame[col] = frame[col].dt.strftime("%Y-%m")
    if fmt == "json":
        print(json.dumps(json.loads(frame.to_json(orient="records", double_precision=10)), indent=1))
    elif fmt == "table":
        print(frame.to_string(index=False))
    else:
        frame.to_csv(sys.stdout, index=False, float_format="%.10g")


def cmd_demo(args) -> int:
    import dataclasses

    from .demo import SCALES, generate

    overrides = {
        k: v
        for k, v in (
            ("new_accounts_per_month", args.accounts_per_month),
            ("user_factor", args.user_factor),
            ("events_per_user_day", args.events_per_user_day),
            ("months", args.months),
        )
        if v is not None
    }
    scale = dataclasses.replace(SCALES[args.scale], **overrides) if overrides else args.scale
    out = paths.resolve(args.out or demo_folder(args.scale))
    truth = generate(out, scale=scale, seed=args.seed, progress=True)
    counts = truth.get("row_counts", {})
    print(f"Demo company written to {out}: " + ", ".join(f"{k} {v:,}" for k, v in counts.items()))
    return 0


def demo_folder(scale: str) -> str:
    """Where `saaskpi demo` writes a scale without --out: the default company in data/demo, the others beside it
    (data/large, data/tiny), so that making the 50M company never replaces the demo the notebooks open."""
    return DEFAULT_SOURCE if scale == "default" else f"data/{scale}"


def cmd_import(args) -> int:
    from .importers import registry, run_import

    importer = registry()[args.importer]
    report = run_import(importer, args, progress=sys.stderr.isatty())
    written = ", ".join(f"{t} {n:,}" if isinstance(n, int) else f"{t} {n}" for t, n in report["rows_written"].items())
    aside = sum(a["count"] for a in report["set_aside"])
    print(
        f"Imported {report['source']} into {paths.resolve(args.out)}: {written}"
        + (f"; {aside:,} row(s) set aside (see {importer.report}.md)" if aside else "")
        + "."
    )
    print(f"Next: saaskpi validate {args.out}")
    return 0


def cmd_validate(args) -> int:
    from .params import conventions
    from .sources import shown
    from .workbook import load_tables

    _ensure_demo(args.source)
    tables = load_tables(args.source, conventions())
    rows = ", ".join(f"{n} {f.height:,}" for n, f in tables.frames.items())
    print(f"{shown(args.source)}: valid ({rows}).")
    return 0


def _workbook(args):
    from .workbook import open_workbook

    _ensure_demo(args.source)
    return open_workbook(args.source, args.segment, args.month or "", interactive=False, engine=args.engine)


def cmd_metrics(args) -> int:
    wb = _workbook(args)
    frame = wb.metrics_frame()
    if args.format == "table":  # for people: values formatted by unit, conventions last
        from . import format as fmt

        cur = wb.conventions.reporting_currency
        frame = frame.assign(
            value=[fmt.value(v, u, cur) for v, u in zip(frame.value, frame.unit)],
            target=[fmt.value(t, u, cur) if t == t and t is not None else "" for t, u in zip(frame.target, frame.unit)],
            n=[f"{n:,.0f}" for n in frame.n],
            convention=[c if len(c) <= 60 else c[:59] + "…" for c in frame.convention],
        )
        print(f"{wb.segment.label}, {wb.month_label}")
    _emit(frame, args.format)
    return 0


def cmd_table(args) -> int:
    from .metrics import TABLE_FUNCS

    spec = TABLE_FUNCS.get(args.name)
    if spec is None or not spec.export:
        names = ", ".join(n for n, t in TABLE_FUNCS.items() if t.export)
        raise ParameterError(f"Unknown table {args.name!r}: choose one of {names}.")
    _emit(_workbook(args).table(args.name), args.format)
    return 0


def cmd_snapshot(args) -> int:
    from .frames import month_label, month_of
    from .params import conventions
    from .snapshot import take_snapshot
    from .workbook import last_complete_month, load_tables

    _ensure_demo(args.source)
    month = args.month or month_label(month_of(last_complete_month(load_tables(args.source, conventions()))))
    snap = take_snapshot(
        month,
        args.source,
        _listed(args.segments),
        _listed(args.notebooks),
        workers=args.workers,
        resume=args.resume,
        timeout=args.cell_timeout,
        reports=paths.resolve(args.reports),
        notebooks_dir=paths.resolve(args.notebooks_dir),
        progress=sys.stderr.isatty(),
        engine=args.engine,
        fork_kernels=not args.no_fork_kernels,
    )
    done = len(snap.results) - len(snap.failed)
    reused = sum(r.reused for r in snap.results)
    print(
        f"{done} of {len(snap.results)} runs succeeded"
        + (f" ({reused} reused from the interrupted attempt)" if reused else "")
        + f"; run {snap.run_id} in {snap.folder} (overview: {snap.index})"
    )
    for r in snap.failed:
        print(f"FAILED {r.describe()}", file=sys.stderr)
    from .delivery import after_snapshot

    after_snapshot(snap.month, paths.resolve(args.reports))  # the enabled lists of delivery.yaml; never fails the run
    return 1 if snap.failed else 0


def cmd_fill(args) -> int:
    from .cache import results_dir
    from .snapshot import fill_store

    _ensure_demo(args.source)
    started = time.perf_counter()
    month, segments, notebooks = fill_store(
        args.month,
        args.source,
        _listed(args.segments),
        _listed(args.notebooks),
        args.engine,
        args.workers,
        progress=sys.stderr.isatty(),
    )
    print(
        f"Results store filled for {month}: {len(notebooks)} notebooks x {len(segments)} segments in "
        f"{time.perf_counter() - started:.0f} s "
        f"({results_dir()}); the apps read them instead of computing them."
    )
    return 0


def _listed(names: str) -> list[str] | None:
    """A comma-separated option as a list (None when empty: every segment or notebook)."""
    return names.split(",") if names else None


def cmd_send(args) -> int:
    from .delivery import logged_to_stderr, send_month
    from .snapshot import completed_runs

    reports = paths.resolve(args.reports)
    if args.month and not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", args.month):
        print(f"--month must be YYYY-MM, got {args.month!r}.", file=sys.stderr)
        return 2
    month = args.month or max((r["month"] for r in completed_runs(reports)), default="")
    if not month:
        print(f"No completed run in {reports}: run `saaskpi snapshot` first.", file=sys.stderr)
        return 2
    with logged_to_stderr():  # each failed try, with its reason
        outcomes = send_month(month, reports, args.list or None, args.force, paths.resolve(args.settings))
    for o in outcomes:
        print(f"{month} {o.describe()}")
    return 1 if any(o.status == "failed" for o in outcomes) else 0


def _readable(table: pd.DataFrame, values: list[str], change: str = "change") -> pd.DataFrame:
    """`table` for people: values formatted by unit in the reporting currency, changes signed, no sci notation."""
    from . import format as fmt
    from .params import conventions

    cur = conventions().reporting_currency
    out = table.copy()
    for col in values:
        out[col] = [fmt.value(v, u, cur) for v, u in zip(table[col], table.unit)]
    out[change] = [fmt.change(v, u, cur) for v, u in zip(table[change], table.unit)]
    return out.drop(columns=["unit", "restated"], errors="ignore")


def _kinds_line(kinds: pd.Series, what: str) -> str:
    from .snapshot import CHANGE_KINDS

    counts = kinds[kinds != ""].value_counts()
    parts = [f"{counts.get(k, 0)} {k} ({CHANGE_KINDS[k]})" for k in CHANGE_KINDS if counts.get(k, 0)]
    return f"{what}: " + ("; ".join(parts) if parts else "none changed") + "."


def cmd_compare(args) -> int:
    from .snapshot import compare_months, compare_runs

    store = paths.resolve(args.reports) / "metrics.parquet"
    if bool(args.months) == bool(args.runs):
        raise ParameterError("Give either --months A B (two months) or --runs ID1 ID2 (two runs, e.g. of one month).")
    if args.months:
        a, b = args.months
        table = compare_months(store, a, b)
        values = [f"value_{a}", f"value_{b}", f"{a}_restated_as"]
        _emit(_readable(table, values) if args.format == "table" else table, args.format)
        print(_kinds_line(table[f"{a}_now"], f"Values for {a} recorded again by the {b} run"), file=sys.stderr)
        return 0
    a, b = args.runs
    table = compare_runs(store, a, b)
    _emit(_readable(table, ["value_a", "value_b"]) if args.format == "table" else table, args.format)
    print(_kinds_line(table.kind, f"Values that differ between run {a} and run {b}"), file=sys.stderr)
    return 0


def cmd_docs(args) -> int:
    from .docs import write_docs

    for p in write_docs():
        print(f"wrote {p.relative_to(paths.ROOT)}")
    return 0


def cmd_app(args) -> int:
    from .app import serve

    if not args.source:
        _ensure_demo(DEFAULT_SOURCE)
    return serve(args.port, args.expose, args.token, args.max_kernels, args.idle_timeout, args.source, args.engine)


def engine_option(sp: argparse.ArgumentParser) -> None:
    """`--engine`: where the metrics run."""
    sp.add_argument("--engine", default="polars", choices=["polars", "duckdb", "spark"], help="where the metrics run")


def pages_run(sp: argparse.ArgumentParser, notebooks_note: str = "") -> None:
    """The arguments of a run of the pages (`snapshot`, `fill`): month, source, segments, notebooks, workers,
    engine."""
    sp.add_argument(
        "--month",
        default="",
        help="YYYY-MM, a month the data covers (from the first paying customer to "
        "the last complete month); default: the last complete month",
    )
    sp.add_argument(
        "--source",
        default=DEFAULT_SOURCE,
        help="the company's data: a folder of CSV/Parquet tables, a .duckdb file, a Spark URL or a postgresql:// URL "
        "(default: the demo company, data/demo)",
    )
    sp.add_argument(
        "--segments",
        default="",
        help="comma-separated segment names (files in parameters/segments/); default: every segment",
    )
    sp.add_argument(
        "--notebooks",
        default="",
        help=f"comma-separated notebook names, e.g. 01_funnel,03_unit_economics; default: every notebook{notebooks_note}",
    )
    sp.add_argument("--workers", type=int, default=2, help="notebooks executed at once")
    engine_option(sp)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="saaskpi", description="B2B SaaS KPI workbook")
    sub = p.add_subparsers(dest="command", required=True)

    d = sub.add_parser("demo", help="generate the deterministic demo company")
    d.add_argument(
        "--out",
        help="folder to write the demo company to (default: data/demo; data/large and data/tiny for those scales)",
    )
    d.add_argument(
        "--scale",
        default="default",
        choices=["tiny", "default", "large"],
        help="tiny for tests, default (about 1,500 accounts), large (10,000 accounts, 50M usage events)",
    )
    d.add_argument("--seed", type=int, default=7, help="random seed: the same seed gives the same company")
    d.add_argument("--accounts-per-month", type=float, help="new accounts in the first month (grows 3 %% a month)")
    d.add_argument("--user-factor", type=float, help="users per account relative to the segment's cap")
    d.add_argument("--events-per-user-day", type=float, help="mean events on a day a user is active")
    d.add_argument("--months", type=int, help="months of history, ending 2026-10")
    d.set_defaults(func=cmd_demo)

    from .importers import add_commands

    imp = sub.add_parser("import", help="read a billing system's exports into a source folder (docs/your-data.md)")
    add_commands(imp, cmd_import)

    v = sub.add_parser("validate", help="check a source against the data contract (exit 2 on problems)")
    v.add_argument(
        "source",
        nargs="?",
        default=DEFAULT_SOURCE,
        help="folder of CSV/Parquet tables, .duckdb file, Spark URL or postgresql:// URL (default: data/demo)",
    )
    v.set_defaults(func=cmd_validate)

    def common(sp):
        sp.add_argument("--source", default=DEFAULT_SOURCE, help="folder, .duckdb file, Spark URL or postgresql:// URL")
        sp.add_argument("--segment", default="all", help="a file in parameters/segments/")
        sp.add_argument(
            "--month",
            default="",
            help="YYYY-MM, a month the data covers (from the first paying customer "
            "to the last complete month); default: the last complete month",
        )
        sp.add_argument(
            "--format",
            default="csv",
            choices=["csv", "json", "table"],
            help="csv and json keep raw numbers; table formats values by unit for people",
        )
        engine_option(sp)

    m = sub.add_parser("metrics", help="every registered metric for one segment and month")
    common(m)
    m.set_defaults(func=cmd_metrics)

    t = sub.add_parser("table", help="export a metric table")
    t.add_argument("name", help="a registered table (docs/metrics.md lists them; a wrong name lists the valid ones)")
    common(t)
    t.set_defaults(func=cmd_table)

    s = sub.add_parser(
        "snapshot",
        help="run every notebook for every segment into a new run reports/<month>/runs/<run id>/",
        description="Execute the notebooks for the segments with papermill into a new, immutable run "
        "reports/<month>/runs/<run id>/; append the rows each page computed to "
        "reports/metrics.parquet and rewrite the month's index. Earlier runs are never "
        "changed. Exit 0: every page ran; 1: some page failed (the others ran); 2: bad "
        "arguments or data (nothing written).",
    )
    pages_run(s, ". The month's other pages stay reachable from its index")
    s.add_argument(
        "--resume",
        action="store_true",
        help="keep the finished pages of an interrupted attempt at the "
        "same run (same source, data, code, engine, segments and notebooks)",
    )
    s.add_argument("--cell-timeout", type=int, default=600, help="seconds one cell may run")
    s.add_argument("--reports", default=str(paths.REPORTS_DIR), help="where the runs and metrics.parquet live")
    s.add_argument("--notebooks-dir", default=str(paths.NOTEBOOKS_DIR), help="the notebooks to run")
    s.add_argument(
        "--no-fork-kernels",
        action="store_true",
        help="start every notebook's kernel from scratch instead of forking it from a process that has imported "
        "the workbook (slower; for a kernel that must not share that process's state)",
    )
    s.set_defaults(func=cmd_snapshot)

    f = sub.add_parser(
        "fill",
        help="compute a month's pages into the results store, so that the apps read them (no run written)",
        description="Run the notebooks for the segments as a snapshot does, but keep only what they compute: "
        "the results store the apps read (in ~/.cache/saaskpi, or SAASKPI_CACHE_DIR). The monthly snapshot fills it already; run this after "
        "changing parameters/ (every stored result depends on them) or for a source the apps show without a "
        "snapshot. Exit 0: filled; 1: some page failed; 2: bad arguments or data.",
    )
    pages_run(f)
    f.set_defaults(func=cmd_fill)

    sn = sub.add_parser(
        "send",
        help="send a month's KPIs and PDFs to the lists of parameters/delivery.yaml",
        description="Send the month's headline KPIs (e-mail with the executive summary as PDF, Slack) "
        "to the enabled lists of parameters/delivery.yaml, or to --list. A channel already "
        "sent for the month is skipped unless --force. Exit 0: sent or skipped; 1: some "
        "channel failed after its retries (the others were sent); 2: bad settings, a "
        "missing secret or no run of the month (nothing sent).",
    )
    sn.add_argument("--month", default="", help="YYYY-MM with a completed run (default: the latest such month)")
    sn.add_argument(
        "--list",
        action="append",
        default=[],
        metavar="NAME",
        help="a list of delivery.yaml, enabled or not (repeatable); default: every enabled list",
    )
    sn.add_argument("--force", action="store_true", help="send again what was sent for the month already")
    sn.add_argument("--reports", default=str(paths.REPORTS_DIR), help="where the runs and metrics.parquet live")
    sn.add_argument(
        "--settings",
        default=str(paths.PARAMETERS_DIR / "delivery.yaml"),
        help="the delivery settings (default: parameters/delivery.yaml)",
    )
    sn.set_defaults(func=cmd_send)

    c = sub.add_parser("compare", help="compare two runs: two months, or two runs of one month (restatements)")
    c.add_argument(
        "--months",
        nargs=2,
        metavar=("A", "B"),
        help="every metric's change from month A to a later month B (the latest run of each), flagging "
        "values for A that B's run restated",
    )
    c.add_argument(
        "--runs",
        nargs=2,
        metavar=("ID1", "ID2"),
        help="the values an earlier run ID1 and a later run ID2 both recorded that differ (restated: a "
        "closed period's value that changed); run ids are listed in each month's index.html",
    )
    c.add_argument("--format", default="table", choices=["csv", "json", "table"], help="output format")
    c.add_argument("--reports", default=str(paths.REPORTS_DIR), help="where the runs and metrics.parquet live")
    c.set_defaults(func=cmd_compare)

    g = sub.add_parser("docs", help="regenerate docs/metrics.md and docs/data-contract.md")
    g.set_defaults(func=cmd_docs)

    a = sub.add_parser("app", help="serve the notebooks as Voila apps on 127.0.0.1")
    a.add_argument("--port", type=int, default=8866, help="port on this machine (default 8866)")
    a.add_argument(
        "--expose", action="store_true", help="listen on every interface (not only 127.0.0.1); a token is then required"
    )
    a.add_argument("--token", default="", help="access token (generated when --expose is given without one)")
    a.add_argument(
        "--max-kernels",
        type=int,
        default=MAX_KERNELS,
        help="kernels the server runs at most, preheated ones included; past it a busy page (HTTP 503)",
    )
    a.add_argument(
        "--idle-timeout",
        type=int,
        default=IDLE_TIMEOUT,
        help="seconds an app's kernel may sit idle, its page open or not, before it is shut down",
    )
    a.add_argument(
        "--source",
        default="",
        help="the data every app shows: folder, .duckdb file, Spark URL or postgresql:// URL, validated before "
        "the server starts (default: the notebooks' own, data/demo)",
    )
    engine_option(a)
    a.set_defaults(func=cmd_app)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        return args.func(args)
    except SaasKpiError as err:
        print(str(err), file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("Interrupted; nothing was left half-written.", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
