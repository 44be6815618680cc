"""The monthly job: every notebook x every segment executed with papermill into `reports/<month>/`.

The month's folder is built in a temporary sibling and renamed into place only when complete,
so an interrupted run never leaves half a snapshot and never damages the previous one.
"""
from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from . import params, paths


@dataclass(frozen=True)
class RunResult:
    """One notebook executed for one segment."""

    notebook: str
    segment: str
    output: Path
    error: str = ""


def notebook_names(folder: Path = paths.NOTEBOOKS_DIR) -> list[str]:
    """The workbook's notebooks, in page order."""
    return sorted(p.stem for p in folder.glob("[0-9][0-9]_*.ipynb"))


def html_report(notebook: Path) -> Path:
    """A self-contained HTML report of an executed notebook, without input cells."""
    import nbformat
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True)
    body, _ = exporter.from_notebook_node(nbformat.read(notebook, as_version=4))
    out = notebook.with_suffix(".html")
    out.write_text(body, encoding="utf-8")
    return out


def _first_error(notebook: Path) -> str:
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if out.get("output_type") == "error":
                return f"cell {i}: {out.get('ename')}: {out.get('evalue')}"
    return ""


def run_one(notebook: str, segment: str, month: str, source: str, folder: Path, timeout: int = 600) -> RunResult:
    """Execute one notebook for one segment with interactive=False, then write its HTML report."""
    import papermill as pm

    out = folder / segment / f"{notebook}.ipynb"
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        pm.execute_notebook(str(paths.NOTEBOOKS_DIR / f"{notebook}.ipynb"), str(out), kernel_name="python3",
                            parameters={"source": source, "segment": segment, "as_of": month, "interactive": False},
                            progress_bar=False, execution_timeout=timeout, log_output=False)
    except Exception as err:  # papermill's and nbclient's errors both: the summary names them
        return RunResult(notebook, segment, out, _first_error(out) if out.exists() else f"{type(err).__name__}: {err}")
    html_report(out)
    return RunResult(notebook, segment, out)


def run_reports(month: str, source: str = "data/demo", segments: list[str] | None = None,
                notebooks: list[str] | None = None, reports: Path = paths.REPORTS_DIR,
                progress: bool = True) -> list[RunResult]:
    """Run every notebook for every segment into `reports/<month>/`, replacing it atomically."""
    from tqdm.auto import tqdm

    segments = segments or params.segment_names()
    notebooks = notebooks or notebook_names()
    reports.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{month}.tmp-", dir=reports))
    results = []
    try:
        runs = [(nb, seg) for seg in segments for nb in notebooks]
        for nb, seg in tqdm(runs, desc=f"reports {month}", unit="run", disable=not progress):
            results.append(run_one(nb, seg, month, source, tmp))
        final = reports / month
        old = reports / f".{month}.old"
        if final.exists():
            final.rename(old)
        tmp.rename(final)
        shutil.rmtree(old, ignore_errors=True)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return [RunResult(r.notebook, r.segment, reports / month / r.output.relative_to(tmp), r.error) for r in results]
