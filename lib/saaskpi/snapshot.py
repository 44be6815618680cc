"""The monthly job: every notebook x every segment executed with papermill into an immutable run
`reports/<month>/runs/<run id>/`, the month's overview `reports/<month>/index.html`, and the append-only
metrics store `reports/metrics.parquet`.

Immutability: a run is built in `reports/<month>/runs/.<run id>.partial/` and renamed into place when every
notebook has finished; once there it is never deleted or rewritten. Running a month again (all of it, or some
notebooks or segments) adds a new run beside the earlier ones; the month's index (the one file of the month that
is rewritten, atomically) lists the runs and links, for every page and segment, the latest run that has it.
The metric rows are written by each page in its own kernel (`write_page_records`, on the engine it ran on) and
appended to the store with the run id, run time, code version and source fingerprint; nothing is ever removed
from the store. An interrupted job leaves every earlier run and the store as they were; `resume=True` keeps the
finished notebooks of the interrupted attempt. A failing notebook does not stop the others.

The results store: every table and metric a page computes goes to the results store (cache.py, through
`Workbook.compute`), so a snapshot fills it for every page and segment of its month; the apps' kernels, which open
the last complete month, then read what a page shows instead of computing it (`fill_store` fills it alone).
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from . import __version__, params, paths
from .errors import ParameterError, SaasKpiError

RUN_COLUMNS = ["run_id", "run_time", "engine", "code_version", "data_fingerprint"]
METRIC_COLUMNS = [
    "snapshot",
    "month",
    "segment",
    "notebook",
    "metric",
    "label",
    "value",
    "unit",
    "n",
    "target",
    "status",
    "immature",
    "convention",
    *RUN_COLUMNS,
]
HISTORY_MONTHS = 12  # each run records the last 12 months, so later runs can reveal restatements
RUN_ENV = "SAASKPI_SNAPSHOT_RUN"  # set in a snapshot's kernels: where the page writes its metric rows, and the run
QUIET_LOGGERS = ("papermill", "nbclient", "jupyter_client", "traitlets", "nbconvert")


@dataclass(frozen=True)
class RunResult:
    """One notebook executed for one segment."""

    notebook: str
    segment: str
    output: Path
    error: str = ""
    cell: int | None = None
    reused: bool = False

    def describe(self) -> str:
        where = f", cell {self.cell}" if self.cell is not None else ""
        return f"{self.notebook} [{self.segment}{where}]: {self.error}"


@dataclass
class Snapshot:
    """What one snapshot job produced: one run of one month."""

    month: str
    folder: Path  # the run's folder, reports/<month>/runs/<run id>
    run_id: str = ""
    results: list[RunResult] = field(default_factory=list)

    @property
    def failed(self) -> list[RunResult]:
        return [r for r in self.results if r.error]

    @property
    def index(self) -> Path:
        """The month's overview page."""
        return self.folder.parent.parent / "index.html"


@dataclass(frozen=True)
class RunInfo:
    """What every row of a run carries."""

    run_id: str
    run_time: str  # ISO 8601, UTC
    month: str
    engine: str
    code_version: str
    data_fingerprint: str

    @classmethod
    def new(cls, month: str, engine: str, version: str, fingerprint: str) -> RunInfo:
        """A run starting now; its id sorts by time: `20261201T203000Z-<6 hex>`."""
        now = dt.datetime.now(dt.UTC)
        salt = f"{now.isoformat()}|{os.getpid()}|{month}|{engine}|{version}|{fingerprint}"
        run_id = f"{now:%Y%m%dT%H%M%SZ}-{hashlib.sha256(salt.encode()).hexdigest()[:6]}"
        return cls(run_id, now.isoformat(timespec="microseconds"), month, engine, version, fingerprint)

    def row_fields(self) -> dict:
        return {
            "run_id": self.run_id,
            "run_time": self.run_time,
            "engine": self.engine,
            "code_version": self.code_version,
            "data_fingerprint": self.data_fingerprint,
        }


def notebook_names(folder: Path = paths.NOTEBOOKS_DIR) -> list[str]:
    """The workbook's notebooks, in page order."""
    return sorted(p.stem for p in folder.glob("[0-9][0-9]_*.ipynb"))


def page_areas(notebook: str) -> tuple[str, ...]:
    """Metric areas a notebook's page shows (declared as AREAS in its page module)."""
    from . import pages

    module = getattr(pages, notebook.split("_", 1)[1], None)
    return tuple(getattr(module, "AREAS", ()))


def html_report(notebook: Path) -> Path:
    """A self-contained HTML report of an executed notebook, without input cells."""
    import nbformat
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(
        exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True, mathjax_url="", require_js_url=""
    )  # nothing fetched from a CDN: opens offline
    body, _ = exporter.from_notebook_node(nbformat.read(notebook, as_version=4))
    body = re.sub(r'<script[^>]*src=""[^>]*>\s*</script>', "", body)
    out = notebook.with_suffix(".html")
    paths.atomic_write(out, body)
    return out


def code_version() -> str:
    """The git commit of the workbook code (package version when git is not available)."""
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=paths.ROOT, capture_output=True, text=True, timeout=10
        )
        return out.stdout.strip() or __version__
    except (OSError, subprocess.SubprocessError):
        return __version__


def metric_records(wb, notebook: str, run: RunInfo) -> list[dict]:
    """The registry metrics a notebook shows, for the run's month and the months before it, as `wb` computes
    them (its engine, its conventions)."""
    from .frames import month_label
    from .metrics import METRICS
    from .stats import target_status

    areas = page_areas(notebook)
    if not areas:  # a notebook that is not a workbook page records no metrics
        return []
    rows = []
    for name, m in METRICS.items():
        if m.area not in areas or wb.tables.missing(*m.needs):
            continue
        series = wb.series(name).tail(HISTORY_MONTHS)
        target = wb.target(name)
        immature = series["immature"] if "immature" in series else [False] * len(series)
        for month, value, n, young in zip(series.month, series.value, series.n, immature):
            rows.append(
                {
                    "snapshot": run.month,
                    "month": month_label(month),
                    "segment": wb.segment.name,
                    "notebook": notebook,
                    "metric": name,
                    "label": m.label_in(wb.conventions),
                    "value": None if pd.isna(value) else float(value),
                    "unit": m.unit,
                    "n": float(n),
                    "target": target,
                    "immature": bool(young),
                    "status": target_status(value, target, m.direction, wb.conventions.status_near_band, bool(young)),
                    "convention": wb.convention_text(name),
                    **run.row_fields(),
                }
            )
    return rows


def write_page_records(wb) -> None:
    """In a snapshot's kernel (RUN_ENV set): write the metric rows of this page, as this workbook computes them,
    beside the executed notebook. `open_workbook` calls it; the page's tiles then read the same cached values."""
    spec = json.loads(os.environ[RUN_ENV])
    run = RunInfo(**spec["run"])
    records = metric_records(wb, spec["notebook"], run)
    paths.atomic_write(Path(spec["records"]), json.dumps(records, indent=1))


def _error_of(exc: BaseException, output: Path) -> tuple[str, int | None]:
    from nbclient.exceptions import CellTimeoutError
    from papermill.exceptions import PapermillExecutionError

    if isinstance(exc, PapermillExecutionError):
        return f"{exc.ename}: {exc.evalue}", exc.cell_index
    if isinstance(exc, CellTimeoutError):
        return f"cell timed out ({str(exc).splitlines()[0]})", _running_cell(output)
    return f"{type(exc).__name__}: {exc}", None


def _running_cell(output: Path) -> int | None:
    """Index of the cell that stopped the run: the first with an error output (a timed-out cell is
    interrupted) or still marked running in papermill's metadata."""
    try:
        nb = json.loads(output.read_text())
    except (OSError, ValueError):
        return None
    for i, cell in enumerate(nb.get("cells", [])):
        errored = any(o.get("output_type") == "error" for o in cell.get("outputs", []))
        if errored or cell.get("metadata", {}).get("papermill", {}).get("status") == "running":
            return i
    return None


def _kernel_manager(env: dict[str, str], log: Path):
    """A kernel manager class whose kernels get `env` and write their own output (ipykernel's warnings about
    unencrypted TCP, "KeyboardInterrupt caught in kernel" at shutdown) to `log`, not the terminal."""
    from jupyter_client.manager import AsyncKernelManager, KernelManager

    async def start_kernel(self, **kw):
        kw["env"] = {**kw.get("env", os.environ), **env}
        with open(log, "ab") as out:
            kw["stdout"] = kw["stderr"] = out
            return await KernelManager._async_start_kernel(self, **kw)

    return type("SnapshotKernelManager", (AsyncKernelManager,), {"start_kernel": start_kernel})


def run_one(
    notebook: str,
    segment: str,
    month: str,
    source: str,
    folder: Path,
    timeout: int = 600,
    notebooks_dir: Path = paths.NOTEBOOKS_DIR,
    engine: str = "polars",
    run: RunInfo | None = None,
) -> RunResult:
    """Execute one notebook for one segment (interactive=False) with its metrics on `engine` and write its HTML
    report. With a `run`, the page writes its metric rows to `<notebook>.metrics.json` beside the notebook
    (`write_page_records`, in the kernel); the kernel's own output goes to `logs/<segment>-<notebook>.log`."""
    import papermill as pm

    out = folder / segment / f"{notebook}.ipynb"
    out.parent.mkdir(parents=True, exist_ok=True)
    (folder / "logs").mkdir(exist_ok=True)
    records = out.with_suffix(".metrics.json")
    env = (
        {}
        if run is None
        else {RUN_ENV: json.dumps({"run": run.__dict__, "notebook": notebook, "records": str(records)})}
    )
    try:
        pm.execute_notebook(
            str(notebooks_dir / f"{notebook}.ipynb"),
            str(out),
            kernel_name="python3",
            parameters={"source": source, "segment": segment, "as_of": month, "interactive": False, "engine": engine},
            progress_bar=False,
            execution_timeout=timeout,
            log_output=False,
            kernel_manager_class=_kernel_manager(env, folder / "logs" / f"{segment}-{notebook}.log"),
        )
    except Exception as exc:  # papermill's and nbclient's errors both: the summary names them
        error, cell = _error_of(exc, out)
        return RunResult(notebook, segment, out, error, cell)
    html_report(out)
    if run is not None and not records.exists():  # a notebook that never opened the workbook shows no metrics
        paths.atomic_write(records, "[]")
    return RunResult(notebook, segment, out)


def _finished(folder: Path, notebook: str, segment: str) -> bool:
    base = folder / segment / notebook
    return all(base.with_suffix(s).exists() for s in (".ipynb", ".html", ".metrics.json"))


def _check_choices(month: str, segments: list[str], notebooks: list[str], notebooks_dir: Path) -> None:
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", month):
        raise ParameterError(f"--month must be YYYY-MM, got {month!r}.")
    _check_names(segments, notebooks, notebooks_dir)


def _check_names(segments: list[str], notebooks: list[str], notebooks_dir: Path) -> None:
    known = params.segment_names()
    unknown = [s for s in segments if s not in known]
    if unknown:
        raise ParameterError(f"Unknown segment(s) {', '.join(unknown)}: choose from {', '.join(known)}.")
    have = notebook_names(notebooks_dir)
    missing = [n for n in notebooks if n not in have]
    if missing:
        raise ParameterError(f"Unknown notebook(s) {', '.join(missing)}: choose from {', '.join(have)}.")


@contextmanager
def _locked(path: Path, what: str):
    """Hold an exclusive lock on `path` (created if missing); another holder makes it a ParameterError."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ParameterError(f"{what} is running already (lock {path}); wait for it to finish.") from None
        yield


@contextmanager
def _quiet():
    """Papermill's and Jupyter's loggers say nothing below ERROR while the snapshot runs (its progress bar and
    summary are its output; failures are in the summary)."""
    loggers = [logging.getLogger(name) for name in QUIET_LOGGERS]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        yield
    finally:
        for lg, level in zip(loggers, levels):
            lg.setLevel(level)


def _manifest(run: RunInfo, source: str, segments: list[str], notebooks: list[str]) -> dict:
    return {**run.__dict__, "source": source, "segments": segments, "notebooks": notebooks}


def _resumable(runs: Path, manifest: dict) -> Path | None:
    """The partial folder of an interrupted attempt at the same run (same source, data, code, engine, pages)."""
    same = ("month", "source", "segments", "notebooks", "engine", "code_version", "data_fingerprint")
    for partial in sorted(runs.glob(".*.partial"), reverse=True):
        try:
            earlier = json.loads((partial / "run.json").read_text())
        except (OSError, ValueError):
            continue
        if all(earlier.get(k) == manifest[k] for k in same):
            return partial
    return None


def take_snapshot(
    month: str,
    source: str = "data/demo",
    segments: list[str] | None = None,
    notebooks: list[str] | None = None,
    workers: int = 2,
    resume: bool = False,
    timeout: int = 600,
    reports: Path = paths.REPORTS_DIR,
    notebooks_dir: Path = paths.NOTEBOOKS_DIR,
    progress: bool = True,
    engine: str = "polars",
    fork_kernels: bool = True,
) -> Snapshot:
    """Run the notebooks x segments into a new run `reports/<month>/runs/<run id>/`, append its rows to the
    metrics store and rewrite the month's index. With `fork_kernels`, the notebooks' kernels are forked from a
    process that has imported the workbook (kernel_fork.py) instead of each starting from scratch.

    Bad arguments, a month the data does not cover (ParameterError) and bad data (DataContractError) stop it
    before anything is written.
    """
    from .workbook import open_workbook

    segments = segments or params.segment_names()
    notebooks = notebooks or notebook_names(notebooks_dir)
    _check_choices(month, segments, notebooks, notebooks_dir)
    # validates the data and the month, up front, on the engine the pages use
    first = open_workbook(source, segments[0], month, interactive=False, engine=engine)
    run = RunInfo.new(month, engine, code_version(), first.all_tables.source.fingerprint())
    runs_dir = reports / month / "runs"
    with _locked(reports / month / ".lock", f"A snapshot of {month}"):
        manifest = _manifest(run, source, segments, notebooks)
        partial = _resumable(runs_dir, manifest) if resume else None
        if partial is None:
            for stale in runs_dir.glob(".*.partial"):  # interrupted attempts (never a run): not resumed, removed
                shutil.rmtree(stale)
            partial = runs_dir / f".{run.run_id}.partial"
            partial.mkdir(parents=True)
            paths.atomic_write(partial / "run.json", json.dumps(manifest, indent=1))
        else:
            run = RunInfo(
                **{
                    k: v
                    for k, v in json.loads((partial / "run.json").read_text()).items()
                    if k in RunInfo.__dataclass_fields__
                }
            )
        results = _execute(
            run,
            source,
            segments,
            notebooks,
            partial,
            resume,
            timeout,
            notebooks_dir,
            workers,
            progress,
            fork=fork_kernels,
        )
        summary = [{"notebook": r.notebook, "segment": r.segment, "error": r.error, "cell": r.cell} for r in results]
        paths.atomic_write(partial / "run.json", json.dumps({**manifest, **run.__dict__, "results": summary}, indent=1))
        final = runs_dir / run.run_id
        partial.rename(final)  # atomic: the run appears whole or not at all
    sync_store(reports)
    write_month_index(reports, month)
    moved = [
        RunResult(r.notebook, r.segment, final / r.output.relative_to(partial), r.error, r.cell, r.reused)
        for r in results
    ]
    return Snapshot(month, final, run.run_id, moved)


def fill_store(
    month: str = "",
    source: str = "data/demo",
    segments: list[str] | None = None,
    notebooks: list[str] | None = None,
    engine: str = "polars",
    workers: int = 2,
    notebooks_dir: Path = paths.NOTEBOOKS_DIR,
    progress: bool = True,
) -> tuple[str, list[str], list[str]]:
    """Run the pages as a snapshot does (papermill, interactive=False) into a temporary folder that is then
    removed: what they compute is left in the results store only. `month` empty: the last complete month (the
    month the apps open). As for a snapshot, bad arguments, a month the data does not cover and bad data stop it
    before any page runs, and so does a cache turned off (no store to fill). Returns the month, the segments and the
    notebooks it ran."""
    import tempfile

    from . import cache
    from .workbook import open_workbook

    if cache.results_dir() is None:
        raise ParameterError("The cache is off (SAASKPI_CACHE_DIR=off): there is no results store to fill.")
    segments = segments or params.segment_names()
    notebooks = notebooks or notebook_names(notebooks_dir)
    if month:
        _check_choices(month, segments, notebooks, notebooks_dir)
    else:
        _check_names(segments, notebooks, notebooks_dir)
    month = open_workbook(source, segments[0], month, interactive=False, engine=engine).month_label  # up front
    with tempfile.TemporaryDirectory(prefix="saaskpi-fill-") as folder:
        run = RunInfo.new(month, engine, code_version(), "")
        results = _execute(
            run, source, segments, notebooks, Path(folder), False, 600, notebooks_dir, workers, progress, records=False
        )
    failed = [f"{r.segment}/{r.notebook}: {r.error}" for r in results if r.error]
    if failed:
        raise SaasKpiError("Some pages failed while filling the results store: " + "; ".join(failed))
    return month, segments, notebooks


def _execute(
    run: RunInfo,
    source: str,
    segments: list[str],
    notebooks: list[str],
    folder: Path,
    resume: bool,
    timeout: int,
    notebooks_dir: Path,
    workers: int,
    progress: bool,
    records: bool = True,
    fork: bool = True,
) -> list[RunResult]:
    """Every notebook x segment of the run (finished ones of a resumed attempt reused), in page order."""
    from tqdm.auto import tqdm

    from .chart_server import charts_drawn_by_one_process
    from .kernel_fork import forked_kernels

    pages = [(nb, seg) for seg in segments for nb in notebooks]
    results: list[RunResult] = []
    todo = []
    for nb, seg in pages:
        if resume and _finished(folder, nb, seg):
            results.append(RunResult(nb, seg, folder / seg / f"{nb}.ipynb", reused=True))
        else:
            todo.append((nb, seg))
    bar = tqdm(total=len(pages), initial=len(results), desc=f"snapshot {run.month}", unit="run", disable=not progress)
    with (
        _quiet(),
        forked_kernels(fork and bool(todo)),
        charts_drawn_by_one_process(bool(todo)),
        ThreadPoolExecutor(max_workers=max(1, workers)) as pool,
    ):
        futures = [
            pool.submit(
                run_one,
                nb,
                seg,
                run.month,
                source,
                folder,
                timeout,
                notebooks_dir,
                run.engine,
                run if records else None,
            )
            for nb, seg in todo
        ]
        for future in as_completed(futures):
            results.append(future.result())
            bar.update()
    bar.close()
    order = {page: i for i, page in enumerate(pages)}
    return sorted(results, key=lambda r: order[(r.notebook, r.segment)])


# --------------------------------------------------------------------------- the runs on disk
def completed_runs(reports: Path, month: str | None = None) -> list[dict]:
    """The manifests (`run.json`) of every completed run, oldest first (of one month when given)."""
    pattern = f"{month}/runs/*/run.json" if month else "*/runs/*/run.json"
    runs = []
    for manifest in reports.glob(pattern):
        if manifest.parent.name.startswith("."):
            continue
        spec = json.loads(manifest.read_text())
        runs.append({**spec, "folder": manifest.parent})
    return sorted(runs, key=lambda r: (r["run_time"], r["run_id"]))


def run_records(run: dict) -> list[dict]:
    """The metric rows the pages of a completed run wrote (failed pages record nothing)."""
    rows = []
    for r in run.get("results", []):
        if r["error"]:
            continue
        sidecar = run["folder"] / r["segment"] / f"{r['notebook']}.metrics.json"
        if sidecar.exists():
            rows.extend(json.loads(sidecar.read_text()))
    return rows


# --------------------------------------------------------------------------- the metrics store
def read_store(store: Path) -> pd.DataFrame:
    """The metrics store (empty with its columns when there is none); rows from before runs had ids get
    `run_id` = `legacy-<month>`."""
    if not store.exists():
        return pd.DataFrame(columns=METRIC_COLUMNS)
    frame = pd.read_parquet(store)
    for column in RUN_COLUMNS:
        if column not in frame:
            frame[column] = None
    legacy = frame.run_id.isna()
    frame.loc[legacy, "run_id"] = "legacy-" + frame.loc[legacy, "snapshot"].astype(str)
    frame.loc[legacy, "run_time"] = ""
    return frame


def append_rows(store: Path, records: list[dict]) -> pd.DataFrame:
    """Append `records` to the store: every existing row kept as it was, the new file written beside it and
    renamed over it, under a lock (two snapshots at once append one after the other)."""
    with open(store.with_name(f".{store.name}.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        new = pd.DataFrame(records, columns=METRIC_COLUMNS)
        if store.exists():
            new = pd.concat([pd.read_parquet(store), new], ignore_index=True)
        paths.atomic_write(store, lambda tmp: new.to_parquet(tmp, index=False))
    return new


def sync_store(reports: Path) -> int:
    """Append the rows of every completed run the store does not have yet (this run's, or one whose job was
    killed between its rename and its append); returns the number of rows added."""
    store = reports / "metrics.parquet"
    have = set(read_store(store).run_id)
    rows = [row for run in completed_runs(reports) if run["run_id"] not in have for row in run_records(run)]
    if rows:
        append_rows(store, rows)
    return len(rows)


def store_metrics(store: Path, snapshot: str, records: list[dict]) -> pd.DataFrame:
    """Kept for callers of the old API: appends `records` (nothing is ever replaced)."""
    return append_rows(store, records)


def latest_rows(store: pd.DataFrame, month: str) -> pd.DataFrame:
    """The rows of the month's runs that the index shows: for each segment and page, those of the latest run
    that has it."""
    rows = store[store.snapshot == month]
    if rows.empty:
        return rows
    last = rows.groupby(["segment", "notebook"]).run_time.transform("max")
    return rows[rows.run_time == last]


# --------------------------------------------------------------------------- the month's index
def write_month_index(reports: Path, month: str) -> Path:
    """`reports/<month>/index.html` (template `month_index.html.j2`): every segment's headline KPIs with change and
    status (each page's latest run), links to each page's latest report, and every run of the month (the first
    kept, the latest marked)."""
    from .metrics import METRICS
    from .templates import render

    runs = completed_runs(reports, month)
    frame = latest_rows(read_store(reports / "metrics.parquet"), month)
    headline = [n for n, m in METRICS.items() if m.level in ("north_star", "core")]
    known = params.segment_names()
    segments = sorted(
        {r["segment"] for run in runs for r in run["results"]},
        key=lambda s: (known.index(s) if s in known else len(known), s),
    )
    pages = sorted({r["notebook"] for run in runs for r in run["results"]})
    rows = [
        {
            "label": params.segment(seg).label if seg in known else seg,
            "links": _page_links(runs, seg, pages),
            "cells": [_headline_cell(frame, seg, name, month) for name in headline],
        }
        for seg in segments
    ]
    page = render(
        "month_index.html.j2",
        month=month,
        month_name=pd.Period(month, "M").strftime("%B %Y"),
        headline=[METRICS[n].label for n in headline],
        rows=rows,
        runs=[_run_row(run, i, len(runs)) for i, run in reversed(list(enumerate(runs)))],
    )
    out = reports / month / "index.html"
    paths.atomic_write(out, page)
    return out


def _headline_cell(frame: pd.DataFrame, segment: str, name: str, month: str) -> dict | None:
    """One metric of one segment in the index: its value, change against the previous month and status (None: the
    month's runs have no value for it)."""
    from . import format as fmt
    from .metrics import METRICS
    from .theme import STATUS

    here = frame[(frame.segment == segment) & (frame.metric == name)].drop_duplicates(["month"])
    prev = (pd.Period(month, "M") - 1).strftime("%Y-%m")
    now, before = here[here.month == month], here[here.month == prev]
    if now.empty:
        return None
    m, v = METRICS[name], now.iloc[0]
    change = v.value - before.iloc[0].value if len(before) and pd.notna(before.iloc[0].value) else float("nan")
    return {
        "value": fmt.value(v.value, m.unit),
        "change": fmt.change(change, m.unit),
        "colour": STATUS.get(v.status, STATUS["n/a"]),
        "status": "" if v.status == "n/a" else v.status,
    }


def _page_links(runs: list[dict], segment: str, pages: list[str]) -> list[dict]:
    """Each page the month's runs tried for `segment`: the report of the latest run where it succeeded (and
    whether a later run failed it), or no link when every run failed it."""
    links = []
    for nb in pages:
        tried = [(run, r) for run in runs for r in run["results"] if r["segment"] == segment and r["notebook"] == nb]
        ok = [run for run, r in tried if not r["error"]]
        if ok:
            href = f"runs/{ok[-1]['run_id']}/{segment}/{nb}.html"
            links.append({"notebook": nb, "href": href, "later_failed": tried[-1][0] is not ok[-1]})
        elif tried:
            links.append({"notebook": nb, "href": "", "later_failed": False})
    return links


def _run_row(run: dict, i: int, count: int) -> dict:
    """One run in the index's table of runs (the i-th of `count`, oldest first)."""
    failed = [r for r in run["results"] if r["error"]]
    return {
        "run_id": run["run_id"],
        "tag": " (latest)" if i == count - 1 else " (first)" if i == 0 else "",
        "started": run["run_time"][:19],
        "done": len(run["results"]) - len(failed),
        "total": len(run["results"]),
        "segments": run["segments"],
        "problems": [RunResult(r["notebook"], r["segment"], Path(), r["error"], r["cell"]).describe() for r in failed],
        "engine": run["engine"],
        "code_version": run["code_version"],
        "fingerprint": run["data_fingerprint"][:12],
    }


# --------------------------------------------------------------------------- comparing runs
CHANGE_KINDS = {
    "restated": "a closed month's value changed beyond its tolerance (late data, a correction)",
    "settling": "a measure that moves while items open at the month end close (support times, invoices)",
    "matured": "recorded while its window was still open (a cohort rate): it was not final",
}


def change_kinds(metric: pd.Series, was: pd.Series, now: pd.Series, immature: pd.Series) -> pd.Series:
    """Why a value recorded by an earlier run differs in a later one (CHANGE_KINDS), or "" when it does not
    differ beyond the metric's restatement tolerance (`Metric.restatement_tolerance`)."""
    from .metrics import METRICS

    was, now = was.astype(float), now.astype(float)
    tolerance = metric.map(lambda n: METRICS[n].restatement_tolerance if n in METRICS else 1e-9).astype(float)
    changed = ((was.isna() != now.isna()) | ((was - now).abs() > tolerance)).fillna(False).astype(bool) & now.notna()
    young = immature.astype("boolean").fillna(False).astype(bool)
    settles = metric.map(lambda n: n in METRICS and METRICS[n].settles).astype(bool)
    kind = pd.Series("", index=was.index, dtype=object)
    kind[changed] = "restated"
    kind[changed & settles] = "settling"
    kind[changed & young] = "matured"
    return kind


def compare_months(store: Path, a: str, b: str) -> pd.DataFrame:
    """Every metric's change from month A (as A's latest run recorded it) to month B (B's latest run), with
    restatements: values for month A that B's run computes differently from what A's run recorded."""
    m = _store_for_compare(store)
    if a >= b:
        raise ParameterError(
            f"--months A B compares an earlier month A with a later month B; got {a} {b}"
            + (f" (swapped? try {b} {a})." if a > b else ".")
        )
    have = set(m.snapshot)
    missing = [x for x in (a, b) if x not in have]
    if missing:
        raise ParameterError(f"No run of {', '.join(missing)} in {store.name} (months: {', '.join(sorted(have))}).")
    keys = ["segment", "notebook", "metric"]
    run_a, run_b = latest_rows(m, a), latest_rows(m, b)
    at_a = run_a[run_a.month == a].set_index(keys)
    at_b = run_b[run_b.month == b].set_index(keys)
    a_again = run_b[run_b.month == a].set_index(keys)
    out = (
        at_a[["label", "unit", "value"]]
        .rename(columns={"value": f"value_{a}"})
        .join(at_b[["value"]].rename(columns={"value": f"value_{b}"}), how="outer")
        .join(a_again[["value"]].rename(columns={"value": f"{a}_restated_as"}), how="left")
    )
    out["change"] = out[f"value_{b}"] - out[f"value_{a}"]
    young = at_a["immature"].reindex(out.index) if "immature" in at_a else pd.Series(False, index=out.index)
    out = out.reset_index()
    out[f"{a}_now"] = change_kinds(out.metric, out[f"value_{a}"], out[f"{a}_restated_as"], young.reset_index(drop=True))
    out["restated"] = out[f"{a}_now"] == "restated"
    return out


def compare_runs(store: Path, first: str, second: str) -> pd.DataFrame:
    """The values two runs both recorded (any month each shows) that differ: one row per segment, page, metric
    and month, `restated` when it is a closed period's value that changed (not one recorded as immature)."""
    m = _store_for_compare(store)
    have = m.drop_duplicates("run_id").set_index("run_id")
    missing = [r for r in (first, second) if r not in have.index]
    if missing:
        runs = ", ".join(f"{r} ({have.loc[r, 'snapshot']})" for r in have.sort_values("run_time").index)
        raise ParameterError(f"No run {', '.join(missing)} in {store.name} (runs: {runs}).")
    if have.loc[first, "run_time"] >= have.loc[second, "run_time"]:
        raise ParameterError(
            f"--runs A B compares an earlier run A with a later run B; {first} is not earlier than "
            f"{second} (swapped? try {second} {first})."
        )
    keys = ["segment", "notebook", "metric", "month"]
    a = m[m.run_id == first].set_index(keys)
    b = m[m.run_id == second].set_index(keys)
    out = (
        a[["label", "unit", "value", "immature"]]
        .rename(columns={"value": "value_a"})
        .join(b[["value"]].rename(columns={"value": "value_b"}), how="inner")
    )
    out = out.reset_index()
    out["change"] = out.value_b - out.value_a
    out["kind"] = change_kinds(out.metric, out.value_a, out.value_b, out.immature)
    out["restated"] = out.kind == "restated"
    return out[out.kind != ""].drop(columns="immature").reset_index(drop=True)


def _store_for_compare(store: Path) -> pd.DataFrame:
    if not store.exists():
        raise ParameterError(f"No metrics store at {store}: run `saaskpi snapshot` first.")
    return read_store(store)


__all__ = [
    "RunInfo",
    "RunResult",
    "Snapshot",
    "compare_months",
    "compare_runs",
    "completed_runs",
    "notebook_names",
    "read_store",
    "run_one",
    "sync_store",
    "take_snapshot",
    "write_month_index",
    "write_page_records",
]
