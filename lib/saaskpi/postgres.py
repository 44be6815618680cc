"""PostgreSQL as a source: the contract tables of one schema of a real server, read Arrow-natively through
ADBC (adbc-driver-postgresql, built on libpq, so a Unix socket, PGPASSWORD and ~/.pgpass work as in psql).

    postgresql://user@host:5432/db?schema=analytics
    postgresql:///db?host=/run/postgresql&schema=analytics      (a Unix socket)

Small tables are read whole and validated like files. The big table (usage_events) is a lazy Polars scan
whose rows come from the server only when collected, restricted in SQL to a segment's accounts and to the
columns asked for; the usage aggregates every page needs run as SQL in the server (see Tables.aggregate).
The password is never shown: messages name the server, database, schema and table without it.
See docs/postgres.md.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import string
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

import polars as pl
from adbc_driver_manager import Error as DriverError

from .contract import TABLES
from .contract.tables import absent_as_null
from .errors import Problem, SourceError
from .sources import Source

DEFAULT_SCHEMA = "public"
CONNECT_TIMEOUT_SECONDS = 10
WORK_MEM = "128MB"  # per sort or hash of this session's queries (the server's default, 4MB, spills to disk)

# PostgreSQL types by the contract type they can hold without losing anything (text holds every type: the
# contract parses it and reports what does not parse, as for CSV files)
_TEXT = ("text", "character varying", "character", "name", "citext")
_INT = ("smallint", "integer", "bigint")
_FLOAT = (*_INT, "real", "double precision", "numeric")
_STORED_AS = {
    pl.Datetime: ("timestamp with time zone", "timestamp without time zone"),
    pl.Date: ("date",),
    pl.Int64: _INT,
    pl.Float64: _FLOAT,
    pl.String: _TEXT,
}
_HOLDS = {
    pl.Datetime: (*_STORED_AS[pl.Datetime], *_TEXT),
    pl.Date: ("date", *_TEXT),
    pl.Int64: (*_INT, "numeric", *_TEXT),
    pl.Float64: (*_FLOAT, *_TEXT),
    pl.String: None,
}  # None: any type
_KIND = {
    pl.Datetime: "a date-time",
    pl.Date: "a date",
    pl.Int64: "a whole number",
    pl.Float64: "a number",
    pl.String: "text",
}
# types ADBC reads as Arrow types Polars knows; any other is read as text (numeric as double precision)
_NATIVE = (*_TEXT, *_INT, "real", "double precision", "boolean", "date", *_STORED_AS[pl.Datetime])


def _contract_type(name: str, column: str) -> Any:
    dtype = TABLES[name].to_schema().columns[column].dtype.type
    return next(t for t in _STORED_AS if dtype == t or isinstance(dtype, t))


def quoted(identifier: str) -> str:
    """An SQL identifier, quoted."""
    return '"' + identifier.replace('"', '""') + '"'


@dataclass(frozen=True)
class Address:
    """Where a PostgreSQL source is: the libpq URI (which may hold a password: never shown), the schema,
    and how to name the place in messages."""

    uri: str
    schema: str
    database: str
    user: str
    server: str  # "host:port" or "the Unix socket in /dir"
    shown: str  # the URL without its password (shown in messages and kept in cache keys)
    password: str = ""

    @property
    def where(self) -> str:
        return f"PostgreSQL at {self.server}, database `{self.database}`"

    @classmethod
    def parse(cls, url: str) -> Address:
        """The address of `url` (postgresql:// or postgres://; `schema` is ours, every other parameter is libpq's)."""
        parts = urlsplit(url)
        query = parse_qsl(parts.query, keep_blank_values=True)
        schema = next((v for k, v in query if k == "schema"), DEFAULT_SCHEMA) or DEFAULT_SCHEMA
        rest = [(k, v) for k, v in query if k != "schema"]
        if not any(k == "connect_timeout" for k, _ in rest):
            rest.append(("connect_timeout", str(CONNECT_TIMEOUT_SECONDS)))
        options = dict(rest)
        host = options.get("host") or (unquote(parts.hostname) if parts.hostname else "")
        port = options.get("port") or (str(parts.port) if parts.port else "5432")
        server = (
            f"the Unix socket in {host}"
            if host.startswith("/")
            else f"{host}:{port}"
            if host
            else "the default local socket"
        )
        user = options.get("user") or unquote(parts.username or "")
        password = options.get("password") or unquote(parts.password or "")
        uri = f"postgresql://{parts.netloc}{parts.path}?{urlencode(rest, safe='/')}"
        netloc = parts.netloc.rsplit("@", 1)[-1]
        netloc = f"{parts.username}@{netloc}" if parts.username else netloc
        shown_query = [(k, v) for k, v in query if k != "password"] or [("schema", schema)]
        shown = f"postgresql://{netloc}{parts.path}?{urlencode(shown_query, safe='/')}"
        database = unquote(parts.path.lstrip("/")) or user or "postgres"
        return cls(uri, schema, database, user, server, shown, password)

    def redact(self, text: str) -> str:
        """`text` without the password (libpq messages do not contain it; this makes sure)."""
        return text.replace(self.password, "***") if self.password else text


def _reason(err: Exception) -> str:
    """The server's or libpq's words in an ADBC error, without ADBC's prefixes."""
    text = str(err).strip()
    text = re.sub(r"^[A-Z_]+: (\[libpq\] )?(Failed to connect: )?", "", text)
    text = re.sub(r"^connection to server (on socket \"[^\"]*\"|at \"[^\"]*\"(, port \d+)?) failed: ", "", text)
    return re.sub(r"\s+", " ", text.replace("FATAL:", "")).strip().rstrip(".")


class PostgresSource(Source):
    """The contract tables (or views) of one schema of a PostgreSQL database."""

    kind = "postgres"

    def __init__(self, address: Address, connection: Any):
        self.address = address
        self.location = address.shown
        self.schema = address.schema
        self._connection = connection
        self._columns: dict[str, list[tuple[str, str]]] | None = None

    # ---------------------------------------------------------------- connecting
    @classmethod
    def open(cls, url: str) -> PostgresSource:
        """Connect to `url` and check that its schema exists; a SourceError says what is wrong."""
        address = Address.parse(url)
        source = cls(address, connect(address))
        found = source._rows("select nspname from pg_namespace where nspname = $1", (address.schema,))
        if not found:
            schemas = [
                r[0]
                for r in source._rows(
                    "select nspname from pg_namespace where nspname !~ '^(pg_|information_schema$)' order by 1"
                )
            ]
            raise SourceError(
                f"Schema `{address.schema}` does not exist in {address.where}. "
                f"Its schemas: {', '.join(schemas) or 'none'}. Name one with ?schema=... in the URL."
            )
        return source

    def _cursor(self):
        return self._connection.cursor()

    def _fetch(self, sql: str, params: tuple = (), table: str = "") -> pl.DataFrame:
        """The result of `sql` as a Polars frame (Arrow from the server, no conversion through Python rows)."""
        try:
            with self._cursor() as cur:
                cur.execute(sql, params or None)
                frame = pl.from_arrow(cur.fetch_arrow_table())
        except DriverError as err:  # every driver error becomes a message naming the place
            self._connection.rollback()
            raise self._error(err, table) from None
        assert isinstance(frame, pl.DataFrame)
        return frame

    def _rows(self, sql: str, params: tuple = ()) -> list[tuple]:
        return self._fetch(sql, params).rows()

    def _error(self, err: Exception, table: str = "") -> SourceError:
        what = f"Reading {self.schema}.{table} from" if table else "A catalogue query to"
        return SourceError(self.address.redact(f"{what} {self.address.where} failed: {_reason(err)}."))

    # ---------------------------------------------------------------- the catalogue
    def columns(self) -> dict[str, list[tuple[str, str]]]:
        """Every table and view of the schema with its columns and their types, in order (read once; from
        pg_catalog, which lists tables the user may not read: reading one then says so)."""
        if self._columns is None:
            rows = self._rows(
                "select c.relname as t, a.attname as c, format_type(a.atttypid, null) as type from pg_attribute a "
                "join pg_class c on c.oid = a.attrelid join pg_namespace n on n.oid = c.relnamespace "
                "where n.nspname = $1 and c.relkind in ('r', 'p', 'v', 'm', 'f') and a.attnum > 0 "
                "and not a.attisdropped order by c.relname, a.attnum",
                (self.schema,),
            )
            self._columns = {}
            for table, column, dtype in rows:
                self._columns.setdefault(table, []).append((column, dtype))
        return self._columns

    def table_names(self) -> list[str]:
        return sorted(n for n in self.columns() if n in TABLES)

    def expected(self, name: str) -> str:
        return f"a table or view {self.schema}.{name}"

    def locate(self, problem: Problem) -> Problem:
        return dataclasses.replace(problem, table=f"{self.schema}.{problem.table}")

    def problems(self) -> list[Problem]:
        """A problem for each contract column stored with a type that cannot hold its values (a date-time
        column of integers, say): the contract would otherwise read such values in some other sense."""
        found = []
        for name in self.table_names():
            schema = TABLES[name].to_schema().columns
            for column, dtype in self.columns()[name]:
                if column not in schema:
                    continue
                want = _contract_type(name, column)
                holds = _HOLDS[want]
                if holds is not None and dtype not in holds:
                    found.append(
                        Problem(
                            f"{name}.wrong_type",
                            name,
                            column,
                            f"is stored as {dtype}: expected {_KIND[want]} (or text)",
                            0,
                        )
                    )
        return found

    def stored_as_contract(self, name: str) -> bool:
        """Whether every contract column of table `name` is stored with the contract's own kind of type."""
        stored = dict(self.columns().get(name, []))
        return all(
            stored.get(c) in _STORED_AS[_contract_type(name, c)] or (c not in stored and absent_as_null(name, c))
            for c in TABLES[name].to_schema().columns
        )

    def _select(self, name: str, columns: list[str] | None = None) -> str:
        """SELECT of table `name`'s columns (all, or those given) as types ADBC reads natively."""
        types = dict(self.columns()[name])
        exprs = []
        for column in columns or list(types):
            dtype = types[column]
            cast = "" if dtype in _NATIVE else "::double precision" if dtype == "numeric" else "::text"
            exprs.append(f"{quoted(column)}{cast} as {quoted(column)}" if cast else quoted(column))
        return f"select {', '.join(exprs)} from {self.qualified(name)}"

    def qualified(self, name: str) -> str:
        return f"{quoted(self.schema)}.{quoted(name)}"

    # ---------------------------------------------------------------- reading
    def read(self, name: str) -> tuple[pl.DataFrame, int]:
        return self._fetch(self._select(name), table=name), 1

    def scan(self, name: str, accounts: pl.Series | None = None) -> pl.LazyFrame | None:
        """Table `name` as a lazy frame read from the server when collected: only the columns asked for and,
        with `accounts`, only their rows (`account_id = any(...)` in SQL). A filter Polars pushes into the
        scan is applied to every batch, and its comparisons of a column with a value also go into the SQL
        (`sql_conditions`), so that a time window is selected by the server."""
        from polars.io.plugins import register_io_source

        schema = self._fetch(self._select(name) + " limit 0", table=name).schema
        where = ""
        if accounts is not None:  # a constant array, which the server hashes (a bound parameter is searched row by row)
            where = f" where {quoted('account_id')}::text = any({_quoted_text(_text_array(accounts.unique().sort().to_list()))}::text[])"
        address, table = self.address, name

        def batches(
            with_columns: list[str] | None, predicate: pl.Expr | None, n_rows: int | None, batch_size: int | None
        ) -> Iterator[pl.DataFrame]:
            conditions = ([where[len(" where ") :]] if where else []) + sql_conditions(predicate, schema)
            sql = (
                self._select(table, with_columns or list(schema))
                + (f" where {' and '.join(conditions)}" if conditions else "")
                + (f" limit {n_rows}" if n_rows else "")
            )
            connection = connect(address)  # its own connection: Polars may collect on another thread
            try:
                with connection.cursor() as cur:
                    cur.execute(sql)
                    for batch in cur.fetch_record_batch():
                        frame = pl.from_arrow(batch)
                        assert isinstance(frame, pl.DataFrame)
                        yield frame if predicate is None else frame.filter(predicate)
            except DriverError as err:
                raise self._error(err, table) from None
            finally:
                connection.close()

        return register_io_source(batches, schema=schema, explain_name=f"postgresql {self.schema}.{name}")

    # ---------------------------------------------------------------- work done in the server
    def can_run(self, sql: str) -> bool:
        """Whether `sql` gives what the contract would: every table it names is stored with contract types."""
        names = {f for _, f, _, _ in string.Formatter().parse(sql) if f}
        return all(n in self.columns() and self.stored_as_contract(n) for n in names)

    def query(self, sql: str) -> pl.DataFrame:
        """`sql` run in the server, with ``{table}`` placeholders naming the schema's tables."""
        names = {f for _, f, _, _ in string.Formatter().parse(sql) if f}
        return self._fetch(sql.format(**{n: self.qualified(n) for n in names}), table=", ".join(sorted(names)))

    def column_max(self, name: str, column: str) -> Any:
        """max(column) computed by the server, when the column is stored with the contract's type."""
        stored = dict(self.columns().get(name, []))
        if stored.get(column) not in _STORED_AS[_contract_type(name, column)]:
            return None
        return self._fetch(f"select max({quoted(column)}) as m from {self.qualified(name)}", table=name).item()

    def fingerprint(self) -> str:
        """A hash of the schema's tables, their columns and types, and for each table its file node and the
        server's counts of rows inserted, updated and deleted (pg_stat_user_tables): any committed write,
        TRUNCATE or schema change alters it. Limits (docs/postgres.md): a view's underlying tables in other
        schemas are not followed, and the counts can lag a writer that is still connected by about a second."""
        stats = self._rows(
            "select c.relname, c.relkind::text, c.relfilenode::bigint, coalesce(s.n_tup_ins, 0) as ins, "
            "coalesce(s.n_tup_upd, 0) as upd, coalesce(s.n_tup_del, 0) as del from pg_class c "
            "join pg_namespace n on n.oid = c.relnamespace left join pg_stat_user_tables s on s.relid = c.oid "
            "where n.nspname = $1 and c.relkind in ('r', 'p', 'v', 'm', 'f') order by 1",
            (self.schema,),
        )
        self._columns = None  # the catalogue is read again: a column may have changed
        h = hashlib.sha256(self.location.encode())
        h.update(repr(stats).encode())
        h.update(repr(sorted(self.columns().items())).encode())
        return h.hexdigest()[:12]


_OPERATORS = {"Eq": "=", "NotEq": "<>", "Lt": "<", "LtEq": "<=", "Gt": ">", "GtEq": ">="}
_PER_SECOND = {"Microseconds": 1_000_000, "Milliseconds": 1_000, "Nanoseconds": 1_000_000_000}


def sql_conditions(predicate: pl.Expr | None, schema: pl.Schema) -> list[str]:
    """SQL conditions implied by a Polars filter: each `column <op> value` joined by `&` at the top (a date-time,
    a number or a text value). Anything else is left out: the rows the SQL returns are a superset of the
    filter's, which is applied to them afterwards anyway. Read from the expression's JSON form, which Polars
    marks unstable: a form this does not know gives no condition, never a wrong one."""
    if predicate is None:
        return []
    try:
        import json

        tree = json.loads(predicate.meta.serialize(format="json"))
    except Exception:  # noqa: BLE001 - no pushdown, the filter still applies
        return []
    found: list[str] = []

    def walk(node: Any) -> None:
        binary = node.get("BinaryExpr") if isinstance(node, dict) else None
        if not binary:
            return
        if binary.get("op") == "And":
            walk(binary.get("left"))
            walk(binary.get("right"))
            return
        op, column = binary.get("op"), binary.get("left", {}).get("Column")
        value = _sql_value(binary.get("right"), op)
        if op in _OPERATORS and column in schema and value is not None:
            found.append(f"{quoted(column)} {_OPERATORS[op]} {value}")

    walk(tree)
    return found


def _sql_value(node: Any, op: str) -> str | None:
    """An SQL literal for a Polars literal node compared with `op`, or None. A date-time bound is widened by a
    second (whole seconds are exact in SQL's to_timestamp); text is only compared for equality (the server's
    collation may order text differently from Polars)."""
    scalar = node.get("Literal", {}).get("Scalar") if isinstance(node, dict) else None
    if not isinstance(scalar, dict) or len(scalar) != 1:
        return None
    kind, value = next(iter(scalar.items()))
    if kind == "Datetime" and isinstance(value, list) and len(value) == 3 and value[1] in _PER_SECOND:
        zone = (value[2] or {}).get("inner") if isinstance(value[2], dict) else value[2]
        if op not in ("Lt", "LtEq", "Gt", "GtEq"):
            return None
        whole = int(value[0]) // _PER_SECOND[value[1]]
        seconds = f"to_timestamp({whole + 2 if op in ('Lt', 'LtEq') else whole - 1})"
        return seconds if zone == "UTC" else f"({seconds} at time zone 'UTC')" if zone is None else None
    if kind in ("Int64", "Int32", "UInt32", "UInt64") and isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if kind in ("String", "StringOwned") and isinstance(value, str) and op == "Eq":
        return _quoted_text(value)
    return None


def _quoted_text(text: str) -> str:
    """An SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def _text_array(values: list) -> str:
    """A PostgreSQL text[] literal of `values`."""
    return "{" + ",".join('"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"' for v in values) + "}"


def connect(address: Address):
    """An ADBC connection to `address` in UTC (month keys are taken in UTC, as on every engine); a
    SourceError names the server and says what went wrong, never showing the password."""
    import adbc_driver_postgresql.dbapi as dbapi

    try:
        connection = dbapi.connect(address.uri)
        with connection.cursor() as cur:
            cur.execute("set time zone 'UTC'")
            cur.execute(f"set work_mem = '{WORK_MEM}'")  # the usage aggregates hash in memory, not on disk
        return connection
    except Exception as err:  # noqa: BLE001 - every driver error becomes a message naming the place
        raise SourceError(address.redact(_connect_message(address, _reason(err)))) from None


def _connect_message(address: Address, reason: str) -> str:
    who = f"user `{address.user}`" if address.user else "the default user"
    if "password authentication failed" in reason or "no password supplied" in reason:
        return (
            f"{address.where} refused the password of {who} ({reason}). Give it in PGPASSWORD, ~/.pgpass "
            "or the URL (it is never shown)."
        )
    if re.search(r'database "[^"]*" does not exist', reason):
        return f"Database `{address.database}` does not exist on PostgreSQL at {address.server} ({reason})."
    if re.search(r'role "[^"]*" does not exist', reason):
        return f"PostgreSQL at {address.server} has no {who} ({reason})."
    if any(s in reason for s in ("No such file", "Connection refused", "could not translate host", "timeout expired")):
        return f"No PostgreSQL server answers at {address.server} ({reason}). Is it running, and is the address right?"
    return f"Cannot connect to {address.where}: {reason}."


def read_schema_tables(url: str, names: list[str] | tuple[str, ...]) -> dict[str, pl.DataFrame]:
    """Tables `names` of the schema in `url` (any tables, not only the contract's: e.g. the Stripe objects a
    loader synced), read whole as stored. A missing table, like every connection problem, is a SourceError
    naming the server, database and schema."""
    source = PostgresSource.open(url)
    missing = [n for n in names if n not in source.columns()]
    if missing:
        present = ", ".join(sorted(source.columns())) or "none"
        raise SourceError(
            f"Table{'s' if len(missing) > 1 else ''} {', '.join(f'{source.schema}.{n}' for n in missing)} "
            f"not found in {source.address.where}. Tables there: {present}."
        )
    return {n: source.read(n)[0] for n in names}
