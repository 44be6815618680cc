"""A disk cache for what every kernel opening the same source would otherwise redo (the pages of a snapshot,
the Voila apps, an analyst's notebooks):

- the results store: every table and metric series a page computes (`Workbook.compute`), kept per source
  fingerprint, segment, month, parameters, engine and code (`cached_result`). A snapshot fills it for every
  segment of its month; an app kernel then reads what its page shows and computes only what is missing. The
  static charts of reports are kept there too, by their Vega-Lite spec (`cached_svg`);
- for big sources, the few aggregates every page needs from the usage events, and the fact that the source
  passed validation (its big table is then not checked again).

An entry is keyed by what its value depends on, the workbook code itself (a hash of every module and of the
company's own metric files) included: change any of it and the entry is not used again. Entries are written
atomically under a lock (flock), so kernels asking for the same entry at once compute it once; a damaged entry
(a truncated file, say) is computed again, never trusted. The folder is `SAASKPI_CACHE_DIR` (default
~/.cache/saaskpi), the results store its `results/` subfolder; `SAASKPI_CACHE_DIR=off` turns both off. It
holds only derived data and can be deleted at any time. Entries unused for 30 days are removed, and the
least recently used ones beyond `SAASKPI_CACHE_MAX_MB` (default 2048) MB, at most once an hour per process
when an entry is written.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import time
from collections import Counter
from collections.abc import Callable
from functools import lru_cache
from pathlib import Path
from typing import Any

import pandas as pd

from . import paths

MAX_AGE_DAYS = 30
MAX_MB = 2048
PRUNE_EVERY_S = 3600
RESULTS = "results"  # the results store's subfolder
LOG = "computed.log"  # one line per value computed for the results store (its count of computations)
_last_prune: dict[Path, float] = {}


def cache_dir() -> Path | None:
    """The cache folder, or None when the cache is off."""
    value = os.environ.get("SAASKPI_CACHE_DIR", "")
    if value.lower() in ("off", "0", "false", "no"):
        return None
    return Path(value).expanduser() if value else Path.home() / ".cache" / "saaskpi"


def results_dir() -> Path | None:
    """The results store's folder, or None when the cache is off."""
    root = cache_dir()
    return None if root is None else root / RESULTS


@lru_cache(maxsize=1)
def code_hash() -> str:
    """A hash of the workbook's code and of the company's own metric files (parameters/metrics/*.py or
    SAASKPI_METRICS_DIR, imported once per process like this hash): any change to them makes new entries."""
    h = hashlib.sha256()
    own = Path(os.environ.get("SAASKPI_METRICS_DIR") or paths.PARAMETERS_DIR / "metrics")
    for root in (paths.PACKAGE_DIR, own):
        for p in sorted(root.rglob("*.py")) if root.is_dir() else []:
            h.update(p.relative_to(root).as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()[:12]


def parameters_hash() -> str:
    """A hash of every file under parameters/ (read each time: a parameter file may change while a kernel runs)."""
    h = hashlib.sha256()
    root = paths.PARAMETERS_DIR
    for p in sorted(root.rglob("*")) if root.is_dir() else []:
        if p.is_file() and not p.name.startswith("."):
            h.update(p.relative_to(root).as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()[:12]


def _entry(name: str, key: str, suffix: str, root: Path | None = None) -> Path | None:
    root = root or cache_dir()
    if root is None:
        return None
    digest = hashlib.sha256(f"{name}|{key}|{code_hash()}".encode()).hexdigest()[:20]
    return root / f"{name}-{digest}{suffix}"


def _cached(
    path: Path | None,
    compute: Callable,
    read: Callable[[Path], object],
    write: Callable[[Any, Path], object],
    log: Path | None = None,
):
    if path is None:
        return compute()
    stored = _read(path, read)  # an entry is replaced atomically: reading one needs no lock
    if stored is not None:
        return stored[0]
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = open(path.with_suffix(".lock"), "a")
    except OSError:
        return compute()  # a read-only home: work without the cache
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        stored = _read(path, read)  # another kernel computed it while this one waited
        if stored is not None:
            return stored[0]
        value = compute()
        if log is not None:
            _record(log, path.name)
        try:
            paths.atomic_write(path, lambda tmp: write(value, tmp))
        except Exception:  # noqa: BLE001 - a value that cannot be stored (a full disk, a type Parquet lacks) is returned unstored
            pass
        _prune_now_and_then(path.parent)
        return value


def _read(path: Path, read: Callable[[Path], object]) -> tuple[object] | None:
    """(value,) of a readable entry, marked as used; None when there is none or it is damaged (then removed)."""
    if not path.exists():
        return None
    try:
        value = read(path)
    except Exception:  # noqa: BLE001 - a damaged entry is recomputed, never trusted
        path.unlink(missing_ok=True)
        return None
    try:
        os.utime(path)  # used now: pruned last
    except OSError:
        pass
    return (value,)


def _record(log: Path, entry: str) -> None:
    """Count one computation of `entry` (an append of one short line: atomic between processes)."""
    try:
        with open(log, "a", encoding="utf-8") as out:
            out.write(f"{time.time():.3f} {os.getpid()} {entry}\n")
    except OSError:
        pass


def computations(prefix: str = "") -> Counter:
    """How many times each results-store entry (file name) starting with `prefix` was computed rather than read."""
    root = results_dir()
    log = root / LOG if root else None
    if log is None or not log.exists():
        return Counter()
    names = (line.split(" ", 2)[-1] for line in log.read_text(encoding="utf-8").splitlines())
    return Counter(n for n in names if n.startswith(prefix))


def _prune_now_and_then(root: Path) -> None:
    if time.time() - _last_prune.get(root, 0) >= PRUNE_EVERY_S:
        _last_prune[root] = time.time()
        prune(root)


def prune(root: Path, max_age_days: float = MAX_AGE_DAYS, max_mb: float | None = None) -> list[Path]:
    """Remove the entries of `root` unused for `max_age_days` (old code versions, sources and months pile up
    otherwise; an entry still wanted is simply computed again), then the least recently used ones until the
    folder holds at most `max_mb` MB (SAASKPI_CACHE_MAX_MB, default 2048). Returns what was removed."""
    if max_mb is None:
        max_mb = float(os.environ.get("SAASKPI_CACHE_MAX_MB") or MAX_MB)
    cutoff = time.time() - max_age_days * 86400
    entries, removed = [], []
    for old in root.iterdir():
        try:
            st = old.stat()
        except OSError:
            continue
        if not old.is_file() or old.name == LOG:
            continue
        if st.st_mtime < cutoff:
            old.unlink(missing_ok=True)
            removed.append(old)
        elif old.suffix != ".lock":
            entries.append((st.st_mtime, st.st_size, old))
    total = sum(size for _, size, _ in entries)
    for _, size, old in sorted(entries):  # least recently used first
        if total <= max_mb * 2**20:
            break
        old.unlink(missing_ok=True)
        removed.append(old)
        total -= size
    log = root / LOG
    if log.exists() and log.stat().st_size > 2**20:  # the count keeps its last lines only
        lines = log.read_text(encoding="utf-8").splitlines(keepends=True)
        tmp = log.with_name(f"{LOG}.tmp-{os.getpid()}")
        tmp.write_text("".join(lines[-5000:]), encoding="utf-8")
        os.replace(tmp, log)
    return removed


def write_parquet(frame: pd.DataFrame, path: Path, index: bool | None = None) -> None:
    """`frame` as Parquet with its text columns dictionary-encoded and no other: Parquet's default tries a dictionary
    for every column and gives it up for numbers and times with many values, which made writing a 134k-row table of
    the results store 3.5x slower (17 -> 60 ms) for a larger file; read back in the same time."""
    text = [str(c) for c in frame.select_dtypes(include=["object", "string", "category"]).columns]
    frame.to_parquet(path, index=index, use_dictionary=text)


def cached_frame(name: str, key: str, compute: Callable[[], pd.DataFrame]) -> pd.DataFrame:
    """The frame `name` for `key` from the cache, else `compute()` stored there first."""
    return _cached(
        _entry(name, key, ".parquet"), compute, pd.read_parquet, lambda frame, path: write_parquet(frame, path, False)
    )


def cached_json(name: str, key: str, compute: Callable[[], object]):
    """The JSON value `name` for `key` from the cache, else `compute()` stored there first (when it returns
    rather than raises: an exception is never cached)."""
    return _cached(
        _entry(name, key, ".json"),
        compute,
        lambda path: json.loads(path.read_text(encoding="utf-8")),
        lambda value, path: path.write_text(json.dumps(value), encoding="utf-8"),
    )


def cached_result(name: str, key: str, compute: Callable[[], object]):
    """Table or metric `name` for `key` (what it depends on: see Workbook.compute) from the results store, else
    `compute()`, stored there first when it is a DataFrame (index, dtypes and column names kept; anything else is
    returned unstored). Every computation is counted (`computations`). The frame read back has the dtypes of
    the one computed because the workbook gives every result its declared schema before it is stored
    (registry.TableSpec.conform, frames.conform): text is str, never object, so Parquet returns it as it was."""
    root = results_dir()

    def write(value, path: Path) -> None:
        if not isinstance(value, pd.DataFrame):
            raise TypeError("only frames are stored")
        write_parquet(value, path)

    return _cached(
        _entry(name, key, ".parquet", root), compute, pd.read_parquet, write, log=root / LOG if root else None
    )


def _ids_of_its_own(svg: str, prefix: str) -> str:
    """`svg` with its element ids (and the references to them) prefixed: vl-convert numbers a legend's gradient per
    process (`gradient_0`), so two charts drawn by two processes and put inline in one page would share an id, and
    the second would be painted with the first's gradient (the reports show each chart as an image of its own)."""
    for name in set(re.findall(r'\bid="([^"]+)"', svg)):
        for form in ('id="{}"', "url(#{})", 'href="#{}"'):
            svg = svg.replace(form.format(name), form.format(prefix + name))
    return svg


@lru_cache(maxsize=1)
def _vl_convert_version() -> str:
    from importlib.metadata import version

    return version("vl-convert-python")


def cached_svg(spec: dict, vl_version: str, draw: Callable[[], str]) -> str:
    """The SVG of Vega-Lite `spec` (its data inlined) from the results store, else `draw()` stored there first:
    keyed by the spec's content and the vl-convert version, so a chart drawn again with the same data (a page run
    after the month's snapshot, a resumed snapshot, `saaskpi fill`) is not drawn again (0.03-0.3 s a chart). Its
    ids are made its own (`_ids_of_its_own`), as charts drawn by different processes meet on one page."""
    root = results_dir()
    if root is None:
        return draw()
    digest = hashlib.sha256(json.dumps(spec, sort_keys=True, default=str).encode()).hexdigest()
    return _cached(
        _entry("chart", f"{digest}|{vl_version}|{_vl_convert_version()}", ".svg", root),
        lambda: _ids_of_its_own(draw(), f"c{digest[:10]}-"),
        lambda path: path.read_text(encoding="utf-8"),
        lambda svg, path: path.write_text(svg, encoding="utf-8"),
    )


def is_stored(name: str, key: str) -> bool:
    """Whether the results store holds table or metric `name` for `key` (see cached_result)."""
    path = _entry(name, key, ".parquet", results_dir())
    return path is not None and path.exists()


def cached_record(name: str, key: str, compute: Callable[[], dict]) -> dict:
    """A small record (a dict of JSON values; NaN allowed) `name` for `key` in the results store, else `compute()`
    stored there first. A metric's value for a month is one: reading it back (a fraction of a millisecond) costs
    far less than reading its series from Parquet into pandas and selecting the month (about 4 ms), which is
    most of what a segment change costs a kernel whose store is filled."""
    root = results_dir()
    return _cached(
        _entry(name, key, ".json", root),
        compute,
        lambda path: json.loads(path.read_text(encoding="utf-8")),
        lambda value, path: path.write_text(json.dumps(value), encoding="utf-8"),
    )
