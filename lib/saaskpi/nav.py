"""The apps' navigation bar: a link to every page that keeps the chosen segment and month.

Each link is `<page>.ipynb?segment=<name>&month=<YYYY-MM>`. The bar is a small widget drawn in the browser;
when a page opens it sends the page's own query string to its kernel, which then shows the segment and month
asked for (only values among the controls' options; anything else is ignored). This works the same for a
kernel preheated before the request arrived (Voila's pool) and for one started by it.
"""

from __future__ import annotations

import json
from functools import lru_cache
from urllib.parse import parse_qs

import anywidget
import traitlets

from . import paths, theme

_ESM = """
function chosen(name, fallback) {
  // the page's own Segment / Month control, as the person left it (the kernel's copy may lag a re-render)
  for (const w of document.querySelectorAll(".widget-dropdown")) {
    const label = w.querySelector("label"), select = w.querySelector("select");
    if (label && select && select.selectedIndex >= 0 && label.textContent.trim() === name) {
      return select.options[select.selectedIndex].textContent;
    }
  }
  return fallback;
}
function draw({ model, el }) {
  const here = decodeURIComponent(window.location.pathname).split("/").pop();
  el.innerHTML = "";
  const bar = document.createElement("nav");
  bar.className = "saaskpi-nav";
  for (const [name, title] of model.get("pages")) {
    const a = document.createElement("a");
    const point = () => {
      const segment = chosen("Segment", model.get("segment")), month = chosen("Month", model.get("month"));
      a.href = `${name}.ipynb?segment=${encodeURIComponent(segment)}&month=${encodeURIComponent(month)}`;
    };
    point();
    for (const event of ["mouseenter", "focus", "mousedown", "touchstart"]) a.addEventListener(event, point);
    a.textContent = title;
    if (here === `${name}.ipynb`) a.className = "current";
    bar.appendChild(a);
  }
  el.appendChild(bar);
}
export default {
  render({ model, el }) {
    draw({ model, el });
    model.on("change:segment", () => draw({ model, el }));
    model.on("change:month", () => draw({ model, el }));
    model.set("query", window.location.search.replace(/^\\?/, ""));
    model.save_changes();
  },
};
"""

_CSS = f"""
.saaskpi-nav {{display:flex;flex-wrap:wrap;gap:4px;font-family:{theme.FONT};margin:0 0 10px 0;
  border-bottom:1px solid {theme.GRID};padding-bottom:6px;}}
.saaskpi-nav a {{padding:6px 12px;border-radius:6px;color:{theme.INK};text-decoration:none;font-size:13px;}}
.saaskpi-nav a:hover {{background:{theme.SURFACE["link"]};}}
.saaskpi-nav a.current {{background:{theme.PALETTE[0]};color:white;font-weight:600;}}
"""


class NavBar(anywidget.AnyWidget):
    """Links to every app with the current segment and month; `query` is the page's own query string."""

    _esm = _ESM
    _css = _CSS
    pages = traitlets.List(traitlets.List(traitlets.Unicode())).tag(sync=True)
    segment = traitlets.Unicode("").tag(sync=True)
    month = traitlets.Unicode("").tag(sync=True)
    query = traitlets.Unicode("").tag(sync=True)


def requested(query: str) -> dict[str, str]:
    """The segment and month a query string asks for (`segment=smb&month=2026-09`), each only if given once."""
    asked = parse_qs(query or "", keep_blank_values=False)
    return {k: asked[k][0] for k in ("segment", "month") if len(asked.get(k, [])) == 1}


@lru_cache(maxsize=1)
def app_pages() -> tuple[tuple[str, str], ...]:
    """(notebook, title) of every page in order; the title is the notebook's first heading."""
    out = []
    for path in sorted(paths.NOTEBOOKS_DIR.glob("[0-9][0-9]_*.ipynb")):
        cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
        heading = next(
            ("".join(c["source"]).splitlines()[0].lstrip("# ") for c in cells if c["cell_type"] == "markdown"),
            path.stem,
        )
        out.append((path.stem, heading))
    return tuple(out)
