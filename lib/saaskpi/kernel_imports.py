"""What a kernel imports: only what it uses (issue 19). Two libraries the workbook needs pull in heavy optional
modules that it does not use, and one asset every interactive kernel rebuilds is kept on disk:

- pandera, when imported, imports `pyspark.pandas` whenever PySpark is installed (pandera/external_config.py,
  so that pandas-on-Spark can patch pandas' type hints first; unionai-oss/pandera#1551, #2344). The workbook
  uses pandera's Polars API only, and PySpark only on the Spark engine, which imports it itself when chosen.
  `import_pandera()` imports pandera with `pyspark.pandas` hidden for that one import.
- jsonschema (imported by Altair) imports `rfc3987_syntax` for its "iri" format check, and that module compiles
  38 Lark grammars when imported: about 1.6 s of CPU in every kernel, for a format check Altair never makes.
  `defer_iri_grammar()` puts a stand-in in its place whose `is_valid_syntax` imports the real module on its
  first call, so the check still works, only later.
- `alt.JupyterChart.enable_offline()` bundles the Vega JavaScript with vl-convert in every kernel (about 1.6 s
  of CPU). `enable_offline_charts()` keeps the bundle in the cache folder (cache.py), keyed by the Altair and
  vl-convert versions, and gives Altair the stored copy. That bundle (0.9 MB) travels in every chart widget's
  state, and the browser evaluates it once per chart: the executive summary with two segment changes sent
  8.8 MB over the websocket. Under `saaskpi app` the server serves the bundle once, at a versioned URL the
  browser caches, and each chart widget carries a four-line loader instead (`VEGA_LOADER`).
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import sys
import types
import warnings
from importlib import metadata

IRI_MODULE = "rfc3987_syntax"


class _DeferredIri(types.ModuleType):
    """Stands in for rfc3987_syntax until its validator is first used (then the real module is imported)."""

    def __init__(self, path: list[str]):
        super().__init__(IRI_MODULE, "deferred by saaskpi.kernel_imports: imported on first use")
        self.__path__ = path  # its submodules stay importable

    @staticmethod
    def _real() -> types.ModuleType:
        if isinstance(sys.modules.get(IRI_MODULE), _DeferredIri):
            del sys.modules[IRI_MODULE]
        return importlib.import_module(IRI_MODULE)

    def __getattr__(self, name: str):
        if name.startswith("__") and name.endswith("__"):  # probing (ipykernel lists every module's `__file__`)
            raise AttributeError(name)
        return getattr(_DeferredIri._real(), name)


def defer_iri_grammar() -> None:
    """Have jsonschema's "iri" format check import rfc3987_syntax when first used rather than at import (a no-op
    once jsonschema or rfc3987_syntax is imported, or when rfc3987_syntax is not installed)."""
    if "jsonschema" in sys.modules or IRI_MODULE in sys.modules:
        return
    spec = importlib.util.find_spec(IRI_MODULE)
    if spec is None or spec.submodule_search_locations is None:
        return
    stand_in = _DeferredIri(list(spec.submodule_search_locations))
    stand_in.__dict__["is_valid_syntax"] = _is_valid_syntax  # what jsonschema imports from it
    sys.modules[IRI_MODULE] = stand_in


def _is_valid_syntax(term: str, value: str) -> bool:
    return _DeferredIri._real().is_valid_syntax(term, value)


def import_pandera() -> None:
    """Import pandera's Polars API without the `pyspark.pandas` import pandera makes when PySpark is installed."""
    if "pandera.polars" in sys.modules:
        return
    hidden = "pyspark.pandas" not in sys.modules
    if hidden:
        sys.modules["pyspark.pandas"] = None  # type: ignore[assignment]  # `import pyspark.pandas` raises ImportError
    try:
        with warnings.catch_warnings():
            # should pyspark.pandas be imported after all, PySpark 4 warns there about pandas 3 (pandas-on-Spark
            # is not used here: the Spark engine goes through Arrow)
            warnings.filterwarnings("ignore", "PySpark does not yet fully support pandas", FutureWarning)
            importlib.import_module("pandera.polars")
    finally:
        if hidden and sys.modules.get("pyspark.pandas", 0) is None:
            del sys.modules["pyspark.pandas"]


def _bundle_key() -> str:
    versions = []
    for dist in ("altair", "vl-convert-python"):
        try:
            versions.append(metadata.version(dist))
        except metadata.PackageNotFoundError:
            versions.append("none")
    return "|".join(versions)


VEGA_MODULE_ENV = "SAASKPI_VEGA_MODULE"  # set by the app server (app_server.py): where it serves the bundle
VEGA_LOADER = """const config = document.getElementById("jupyter-config-data");
const base = config ? JSON.parse(config.textContent).baseUrl : "/";
const bundle = await import(new URL(base + "{path}", window.location.origin).href);
export default bundle.default;
"""


def vega_bundle() -> str:
    """The JavaScript module `alt.JupyterChart.enable_offline()` makes with vl-convert (Altair's widget with Vega
    bundled in, about 0.9 MB), read from the cache folder when an earlier process made it."""
    import altair as alt

    from .cache import cached_json

    def bundle() -> str:
        alt.JupyterChart.enable_offline()
        return alt.JupyterChart._esm

    return cached_json("vega-bundle", _bundle_key(), bundle)


def vega_module_path() -> str:
    """The bundle's path under the app server's base URL; the versions in it, so a browser may cache it for good."""
    digest = hashlib.sha256(_bundle_key().encode()).hexdigest()[:16]
    return f"saaskpi/vega-{digest}.js"


def enable_offline_charts() -> None:
    """Charts that load no JavaScript from another host. Under `saaskpi app` (the server sets
    `SAASKPI_VEGA_MODULE`), every chart widget carries a four-line loader of the bundle the server serves at that
    path: the page downloads and evaluates the bundle once, however many charts it shows. Elsewhere (JupyterLab),
    `alt.JupyterChart.enable_offline()` with the bundle from the cache folder: each chart widget carries it."""
    import altair as alt

    chart = alt.JupyterChart
    if getattr(chart, "_is_offline", False):
        return
    served = os.environ.get(VEGA_MODULE_ENV, "")
    chart._esm = VEGA_LOADER.replace("{path}", served) if served else vega_bundle()
    chart._is_offline = True
