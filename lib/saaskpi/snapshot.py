"""The monthly job: every notebook x every segment executed with papermill into an immutable
snapshot `reports/<month>/`, an overview page, and the metrics store `reports/metrics.parquet`.

Safety: runs are written into `reports/.<month>.partial/` and the folder is renamed into place only
when every run has finished, so an interrupted job never leaves half a snapshot and never damages
the previous one. `resume=True` keeps the finished runs of an interrupted attempt. A failing
notebook does not stop the others.
"""
from __future__ import annotations

import datetime as dt
import html
import json
import os
import re
import shutil
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from . import __version__, params, paths
from .errors import ParameterError

METRIC_COLUMNS = ["snapshot", "month", "segment", "notebook", "metric", "label", "value", "unit", "n", "target",
                  "status", "immature", "convention", "code_version", "data_fingerprint"]
HISTORY_MONTHS = 12  # each run records the last 12 months, so later snapshots can reveal restatements
_lock = threading.Lock()


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
    """What one snapshot job produced."""

    month: str
    folder: Path
    results: list[RunResult] = field(default_factory=list)

    @property
    def failed(self) -> list[RunResult]:
        return [r for r in self.results if r.error]


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

    exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True,
                            mathjax_url="", require_js_url="")  # nothing fetched from a CDN: opens offline
    body, _ = exporter.from_notebook_node(nbformat.read(notebook, as_version=4))
    body = re.sub(r'<script[^>]*src=""[^>]*>\s*</script>', "", body)
    out = notebook.with_suffix(".html")
    paths.atomic_write(out, body)
    return out


def code_version() -> str:
    """The git commit of the workbook code (package version when git is not available)."""
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=paths.ROOT, capture_output=True, text=True,
                             timeout=10)
        return out.stdout.strip() or __version__
    except (OSError, subprocess.SubprocessError):
        return __version__


def metric_records(wb, notebook: str, snapshot: str, version: str, fingerprint: str) -> list[dict]:
    """The registry metrics a notebook shows, for the snapshot month and the months before it."""
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
            rows.append({"snapshot": snapshot, "month": month_label(month), "segment": wb.segment.name,
                         "notebook": notebook, "metric": name, "label": m.label,
                         "value": None if pd.isna(value) else float(value), "unit": m.unit, "n": float(n),
                         "target": target, "immature": bool(young),
                         "status": target_status(value, target, m.direction, wb.conventions.status_near_band,
                                                 bool(young)),
                         "convention": wb.convention_text(name), "code_version": version,
                         "data_fingerprint": fingerprint})
    return rows


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


def run_one(notebook: str, segment: str, month: str, source: str, folder: Path, timeout: int = 600,
            notebooks_dir: Path = paths.NOTEBOOKS_DIR, version: str = "", fingerprint: str = "",
            engine: str = "polars") -> RunResult:
    """Execute one notebook for one segment (interactive=False) with its metrics on `engine`, write its HTML
    report and metrics sidecar (the sidecar's values are computed on Polars: the engines agree, test_parity)."""
    import papermill as pm

    out = folder / segment / f"{notebook}.ipynb"
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        pm.execute_notebook(str(notebooks_dir / f"{notebook}.ipynb"), str(out), kernel_name="python3",
                            parameters={"source": source, "segment": segment, "as_of": month, "interactive": False,
                                        "engine": engine},
                            progress_bar=False, execution_timeout=timeout, log_output=False)
    except Exception as exc:  # papermill's and nbclient's errors both: the summary names them
        error, cell = _error_of(exc, out)
        return RunResult(notebook, segment, out, error, cell)
    html_report(out)
    if month:
        from .workbook import open_workbook

        wb = open_workbook(source, segment, month, interactive=False)
        records = metric_records(wb, notebook, month, version, fingerprint)
        paths.atomic_write(out.with_suffix(".metrics.json"), json.dumps(records, indent=1))
    return RunResult(notebook, segment, out)


def _finished(folder: Path, notebook: str, segment: str) -> bool:
    base = folder / segment / notebook
    return all(base.with_suffix(s).exists() for s in (".ipynb", ".html", ".metrics.json"))


def _check_choices(month: str, segments: list[str], notebooks: list[str], notebooks_dir: Path) -> None:
    import re

    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", month):
        raise ParameterError(f"--month must be YYYY-MM, got {month!r}.")
    known = params.segment_names()
    unknown = [s for s in segments if s not in known]
    if unknown:
        raise ParameterError(f"Unknown segment(s) {', '.join(unknown)}: choose from {', '.join(known)}.")
    have = notebook_names(notebooks_dir)
    missing = [n for n in notebooks if n not in have]
    if missing:
        raise ParameterError(f"Unknown notebook(s) {', '.join(missing)}: choose from {', '.join(have)}.")


def take_snapshot(month: str, source: str = "data/demo", segments: list[str] | None = None,
                  notebooks: list[str] | None = None, workers: int = 2, resume: bool = False, timeout: int = 600,
                  reports: Path = paths.REPORTS_DIR, notebooks_dir: Path = paths.NOTEBOOKS_DIR,
                  progress: bool = True, engine: str = "polars") -> Snapshot:
    """Run every notebook x segment into `reports/<month>/`, then the overview and the metrics store.

    Bad arguments raise ParameterError and bad data DataContractError before anything is written.
    """
    from tqdm.auto import tqdm

    from .workbook import open_workbook

    segments = segments or params.segment_names()
    notebooks = notebooks or notebook_names(notebooks_dir)
    _check_choices(month, segments, notebooks, notebooks_dir)
    first = open_workbook(source, segments[0], month, interactive=False)  # validates the data once, up front
    fingerprint, version = first.all_tables.source.fingerprint(), code_version()
    reports.mkdir(parents=True, exist_ok=True)
    partial = reports / f".{month}.partial"
    if partial.exists() and not resume:
        shutil.rmtree(partial)
    partial.mkdir(exist_ok=True)
    paths.atomic_write(partial / "snapshot.json", json.dumps({"month": month, "source": source, "segments": segments,
                                                         "notebooks": notebooks, "code_version": version,
                                                         "data_fingerprint": fingerprint}, indent=1))
    runs = [(nb, seg) for seg in segments for nb in notebooks]
    results: list[RunResult] = []
    todo = []
    for nb, seg in runs:
        if resume and _finished(partial, nb, seg):
            results.append(RunResult(nb, seg, partial / seg / f"{nb}.ipynb", reused=True))
        else:
            todo.append((nb, seg))
    bar = tqdm(total=len(runs), initial=len(results), desc=f"snapshot {month}", unit="run", disable=not progress)
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        futures = [pool.submit(run_one, nb, seg, month, source, partial, timeout, notebooks_dir, version, fingerprint,
                               engine)
                   for nb, seg in todo]
        for future in as_completed(futures):
            results.append(future.result())
            bar.update()
    bar.close()
    order = {run: i for i, run in enumerate(runs)}
    results.sort(key=lambda r: order[(r.notebook, r.segment)])
    records = [row for r in results if not r.error for row in
               json.loads(r.output.with_suffix(".metrics.json").read_text())]
    write_index(partial, month, records, results)
    final = reports / month
    old = reports / f".{month}.old"
    shutil.rmtree(old, ignore_errors=True)
    with _lock:
        if final.exists():
            final.rename(old)
        partial.rename(final)
    shutil.rmtree(old, ignore_errors=True)
    store_metrics(reports / "metrics.parquet", month, records)
    moved = [RunResult(r.notebook, r.segment, final / r.output.relative_to(partial), r.error, r.cell, r.reused)
             for r in results]
    return Snapshot(month, final, moved)


def store_metrics(store: Path, snapshot: str, records: list[dict]) -> pd.DataFrame:
    """Merge a snapshot's records into the metrics store, replacing what that snapshot recorded before."""
    new = pd.DataFrame(records, columns=METRIC_COLUMNS)
    if store.exists():
        old = pd.read_parquet(store)
        new = pd.concat([old[old.snapshot != snapshot], new], ignore_index=True)
    new = new.sort_values(["snapshot", "segment", "notebook", "metric", "month"], kind="stable").reset_index(drop=True)
    tmp = store.with_name(f".{store.name}.tmp")
    new.to_parquet(tmp, index=False)
    os.replace(tmp, store)
    return new


def write_index(folder: Path, month: str, records: list[dict], results: list[RunResult]) -> Path:
    """`index.html`: every segment's headline KPIs with change and status, and links to each report."""
    from . import format as fmt
    from .metrics import METRICS
    from .theme import FONT, INK, MUTED, STATUS

    frame = pd.DataFrame(records, columns=METRIC_COLUMNS)
    prev = (pd.Period(month, "M") - 1).strftime("%Y-%m")
    headline = [n for n, m in METRICS.items() if m.level in ("north_star", "core")]
    segments = list(dict.fromkeys(r.segment for r in results))
    rows = []
    for seg in segments:
        cells = []
        for name in headline:
            here = frame[(frame.segment == seg) & (frame.metric == name)].drop_duplicates(["month"])
            now, before = here[here.month == month], here[here.month == prev]
            if now.empty:
                cells.append("<td>–</td>")
                continue
            m, v = METRICS[name], now.iloc[0]
            change = v.value - before.iloc[0].value if len(before) and pd.notna(before.iloc[0].value) else float("nan")
            colour = STATUS.get(v.status, STATUS["n/a"])
            cells.append(f'<td><b>{fmt.value(v.value, m.unit)}</b><br><span class="c">{fmt.change(change, m.unit)}</span>'
                         f'<br><span style="color:{colour}">{"" if v.status == "n/a" else v.status}</span></td>')
        links = " · ".join(
            f'<a href="{html.escape(r.segment)}/{html.escape(r.notebook)}.html">{html.escape(r.notebook)}</a>'
            if not r.error else f'<span class="err">{html.escape(r.notebook)} failed</span>'
            for r in results if r.segment == seg)
        rows.append(f"<tr><th>{html.escape(params.segment(seg).label)}<br><span class='c'>{links}</span></th>{''.join(cells)}</tr>")
    head = "".join(f"<th>{html.escape(METRICS[n].label)}</th>" for n in headline)
    failed = [r for r in results if r.error]
    note = "" if not failed else "<p class='err'>" + "<br>".join(html.escape(r.describe()) for r in failed) + "</p>"
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>SaaS KPIs {month}</title>
<style>body{{font-family:{FONT};color:{INK};margin:24px}} table{{border-collapse:collapse}}
td,th{{padding:6px 10px;border-bottom:1px solid #e5e7eb;text-align:left;vertical-align:top;font-size:13px}}
.c{{color:{MUTED};font-size:11px;font-weight:400}} .err{{color:{STATUS['off']}}}</style></head><body>
<h1>SaaS KPIs, {pd.Period(month, 'M').strftime('%B %Y')}</h1>
<p class="c">Snapshot taken {dt.datetime.now(dt.timezone.utc):%Y-%m-%d %H:%M} UTC. Change is against the previous month;
status against each metric's target.</p>{note}
<table><tr><th>segment</th>{head}</tr>{''.join(rows)}</table></body></html>"""
    out = folder / "index.html"
    paths.atomic_write(out, page)
    return out


def compare_months(store: Path, a: str, b: str) -> pd.DataFrame:
    """Every metric's change from month A (as snapshot A recorded it) to month B (snapshot B), with
    restatements: values for month A that snapshot B computes differently from snapshot A."""
    if not store.exists():
        raise ParameterError(f"No metrics store at {store}: run `saaskpi snapshot` first.")
    m = pd.read_parquet(store)
    have = set(m.snapshot)
    missing = [x for x in (a, b) if x not in have]
    if missing:
        raise ParameterError(f"No snapshot for {', '.join(missing)} in {store.name} (snapshots: {', '.join(sorted(have))}).")
    keys = ["segment", "notebook", "metric"]
    at_a = m[(m.snapshot == a) & (m.month == a)].set_index(keys)
    at_b = m[(m.snapshot == b) & (m.month == b)].set_index(keys)
    a_again = m[(m.snapshot == b) & (m.month == a)].set_index(keys)
    out = at_a[["label", "unit", "value"]].rename(columns={"value": f"value_{a}"}).join(
        at_b[["value"]].rename(columns={"value": f"value_{b}"}), how="outer").join(
        a_again[["value"]].rename(columns={"value": f"{a}_restated_as"}), how="left")
    out["change"] = out[f"value_{b}"] - out[f"value_{a}"]
    was, now = out[f"value_{a}"].astype(float), out[f"{a}_restated_as"].astype(float)
    # restated: snapshot B has a value for month A and it differs from what snapshot A recorded
    # a value recorded as immature (its conversion window still open) is expected to change: not a restatement
    young = at_a["immature"].reindex(out.index).fillna(False).astype(bool) if "immature" in at_a else False
    out["restated"] = ~young & now.notna() & (was.isna() | ((was - now).abs() > 1e-9 * (1 + was.abs())))
    return out.reset_index()


__all__ = ["RunResult", "Snapshot", "compare_months", "notebook_names", "run_one", "store_metrics",
           "take_snapshot", "write_index"]
