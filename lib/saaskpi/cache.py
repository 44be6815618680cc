"""A disk cache for what every kernel opening the same big source would otherwise redo (the pages of a
snapshot, the Voila apps, an analyst's notebooks): the few aggregates every page needs from the usage
events, and the fact that the source passed validation (its big table is then not checked again).

An entry is keyed by the source's fingerprint (its files' names, sizes and modification times), the engine
and the workbook code itself (a hash of every module): change either and the entry is not used again. Entries
are written atomically under a lock, so kernels starting together compute an aggregate once. The folder is
`SAASKPI_CACHE_DIR` (default ~/.cache/saaskpi); `SAASKPI_CACHE_DIR=off` turns the cache off. It holds only
derived data and can be deleted at any time; entries older than 30 days are removed when a new one is written.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import time
from functools import lru_cache
from pathlib import Path
from typing import Callable

import pandas as pd

from . import paths

MAX_AGE_DAYS = 30


def cache_dir() -> Path | None:
    """The cache folder, or None when the cache is off."""
    value = os.environ.get("SAASKPI_CACHE_DIR", "")
    if value.lower() in ("off", "0", "false", "no"):
        return None
    return Path(value).expanduser() if value else Path.home() / ".cache" / "saaskpi"


@lru_cache(maxsize=1)
def code_hash() -> str:
    """A hash of the workbook's code: any change to it makes new cache entries."""
    h = hashlib.sha256()
    for p in sorted(paths.PACKAGE_DIR.rglob("*.py")):
        h.update(p.relative_to(paths.PACKAGE_DIR).as_posix().encode())
        h.update(p.read_bytes())
    return h.hexdigest()[:12]


def _entry(name: str, key: str, suffix: str) -> Path | None:
    root = cache_dir()
    if root is None:
        return None
    digest = hashlib.sha256(f"{name}|{key}|{code_hash()}".encode()).hexdigest()[:20]
    return root / f"{name}-{digest}{suffix}"


def _cached(path: Path | None, compute: Callable, read: Callable[[Path], object], write: Callable[[object, Path], None]):
    if path is None:
        return compute()
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        lock = open(path.with_suffix(".lock"), "w")
    except OSError:
        return compute()  # a read-only home: work without the cache
    with lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if path.exists():
            try:
                return read(path)
            except Exception:  # noqa: BLE001 - a damaged entry is recomputed, never trusted
                path.unlink(missing_ok=True)
        value = compute()
        try:
            paths.atomic_write(path, lambda tmp: write(value, tmp))
        except OSError:
            pass
        _prune(path.parent)
        return value


def _prune(root: Path) -> None:
    """Remove entries written more than MAX_AGE_DAYS ago (old code versions and sources pile up otherwise;
    an entry still in use is simply computed again)."""
    cutoff = time.time() - MAX_AGE_DAYS * 86400
    for old in root.iterdir():
        try:
            if old.stat().st_mtime < cutoff:
                old.unlink()
        except OSError:
            pass


def cached_frame(name: str, key: str, compute: Callable[[], pd.DataFrame]) -> pd.DataFrame:
    """The frame `name` for `key` from the cache, else `compute()` stored there first."""
    return _cached(_entry(name, key, ".parquet"), compute, pd.read_parquet,
                   lambda frame, path: frame.to_parquet(path, index=False))


def cached_json(name: str, key: str, compute: Callable[[], object]):
    """The JSON value `name` for `key` from the cache, else `compute()` stored there first (when it returns
    rather than raises: an exception is never cached)."""
    return _cached(_entry(name, key, ".json"), compute, lambda path: json.loads(path.read_text(encoding="utf-8")),
                   lambda value, path: path.write_text(json.dumps(value), encoding="utf-8"))
