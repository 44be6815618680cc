"""The HTML pages and fragments the package writes, as Jinja2 templates shipped beside this module (`*.html.j2`,
declared as package data): the month's index of a snapshot (`month_index`), and the delivery's e-mail, KPI table,
PDF cover and print style sheet.

Autoescaping is on: every value a template shows is escaped unless it is `Markup` (a fragment another template
rendered, or the theme's colours and font, which the templates get as the global `theme`). The code computes
the values (formatted numbers, links, colours) and the templates only lay them out."""

from __future__ import annotations

from functools import cache

from jinja2 import Environment, PackageLoader, StrictUndefined
from markupsafe import Markup


@cache
def environment() -> Environment:
    """The package's template environment (autoescape on, an undefined name is an error, block tags leave no
    blank lines)."""
    from ..theme import FONT, INK, MUTED, STATUS

    env = Environment(
        loader=PackageLoader("saaskpi", "templates"),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals["theme"] = {
        "font": Markup(FONT),
        "ink": Markup(INK),
        "muted": Markup(MUTED),
        "status": {k: Markup(v) for k, v in STATUS.items()},
    }
    return env


def render(name: str, **values: object) -> str:
    """Template `name` (e.g. `month_index.html.j2`) rendered with `values`, as a plain `str` (not `Markup`, whose
    `+` would escape the page it is concatenated with)."""
    return environment().get_template(name).render(**values)


__all__ = ["environment", "render"]
