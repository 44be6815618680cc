"""Errors a person can act on: short messages, every problem at once."""

from __future__ import annotations

from dataclasses import dataclass, field


class SaasKpiError(Exception):
    """Base class of the workbook's own errors (shown without a traceback)."""

    exit_code = 1
    shown = False  # set once the message has been displayed as a panel (interactive notebooks)

    def _render_traceback_(self) -> list[str]:
        """What IPython shows instead of a traceback (JupyterLab, papermill outputs): the message alone."""
        if self.shown:
            return [f"{type(self).__name__}: the run stopped here; the message is shown above."]
        return [f"{type(self).__name__}: {line}" if i == 0 else line for i, line in enumerate(str(self).splitlines())]


@dataclass(frozen=True)
class Problem:
    """One broken rule in one table column: what, where, how often, examples."""

    code: str
    table: str
    column: str | None
    message: str
    count: int
    examples: tuple[str, ...] = field(default_factory=tuple)

    def __str__(self) -> str:
        where = f"{self.table}.{self.column}" if self.column else self.table
        rows = f" ({self.count:,} row{'s' if self.count != 1 else ''})" if self.count else ""  # 0: a file-level problem
        text = f"[{self.code}] {where}: {self.message}{rows}"
        if self.examples:
            text += "\n      e.g. " + "\n           ".join(self.examples)
        return text


class DataContractError(SaasKpiError):
    """The source breaks the data contract; `problems` lists every failure."""

    exit_code = 2

    def __init__(self, problems: list[Problem], source: str = ""):
        self.problems = list(problems)
        self.source = source
        head = f"The data in {source} breaks the data contract" if source else "The data breaks the data contract"
        n = len(self.problems)
        lines = [f"{head}: {n} problem{'s' if n != 1 else ''}."]
        lines += [f"  {i}. {p}" for i, p in enumerate(self.problems, 1)]
        lines.append("Fix the source data (it was not modified) and run `saaskpi validate` again.")
        super().__init__("\n".join(lines))


class ParameterError(SaasKpiError):
    """A parameter file or argument is wrong."""

    exit_code = 2


class SourceError(SaasKpiError):
    """A data source cannot be opened."""

    exit_code = 2


class MissingTablesError(SaasKpiError):
    """A page needs tables the source does not have."""

    def __init__(self, tables: list[str], what: str = "This section"):
        self.tables = list(tables)
        names = ", ".join(f"`{t}`" for t in tables)
        super().__init__(
            f"{what} needs the {names} table{'s' if len(tables) > 1 else ''}, which this data source does not have."
        )
