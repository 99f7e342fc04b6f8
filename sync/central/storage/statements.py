"""Compiled statements for many rows, on SQLite or PostgreSQL: what the projection, the change log
and the rebuild of the read tables write with."""

from sqlalchemy import String, any_, bindparam
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.sql.dml import Insert

from sync.central.storage.tables import NAMED_PARAM

_ARRAY_TYPE = {"BigInteger": "bigint", "Integer": "bigint", "Float": "float8"}  # else text: assigned to its column


class Statements:
    """Compiled INSERTs for many rows on one database kind: what the projection and the change log write with."""

    def __init__(self, dialect):
        self.dialect = dialect.name
        self._sql_dialect = dialect
        self._compiled: dict = {}

    def insert(self, table):
        """The dialect's INSERT that knows ON CONFLICT."""
        return (postgresql.insert if self.dialect == "postgresql" else sqlite.insert)(table)

    def among(self, column, values):
        """`column IN values`; on PostgreSQL `= ANY(one array)`, whose text (and so its parse) is
        the same for any number of values."""
        if self.dialect == "postgresql":
            return column == any_(bindparam(None, list(values), type_=postgresql.ARRAY(String)))
        return column.in_(list(values))

    def _executemany(self, conn, key: str, build, rows: list[dict]) -> int | None:
        """Runs one statement for many rows of the same keys, compiled once per Storage; returns
        how many rows it changed (None when the driver does not say).

        The statement `build()` makes is compiled for this database the first time; later calls
        hand the rows straight to the driver, which skips SQLAlchemy's per-row parameter
        processing. On PostgreSQL an INSERT takes all its rows as one array per column
        (`INSERT … SELECT * FROM unnest(…)`): a statement per row costs the server a parse, a
        plan and a round of the pipeline each; the rows must then be distinct in their conflict
        key. SQLite takes executemany. The bench's bulk-INSERT ceiling uses it too.
        """
        if not rows:
            return 0
        found = self._compiled.get(key)
        if found is None:
            found = self._compiled[key] = self._compile(build(), list(rows[0]))
        sql, order, arrays = found
        if arrays:
            return conn.exec_driver_sql(sql, tuple([row[k] for row in rows] for k in order)).rowcount
        done = conn.exec_driver_sql(sql, [tuple([row[k] for k in order]) for row in rows]).rowcount
        return done if done is not None and done >= 0 else None

    def _compile(self, statement, keys: list[str]) -> tuple[str, tuple, bool]:
        """(sql, parameter order, whether it takes one array per column) of a statement."""
        compiled = statement.compile(dialect=self._sql_dialect, column_keys=keys)
        sql, order = compiled.string, compiled.positiontup
        if order is None:  # named parameters (psycopg): made positional, tuples are cheaper than dicts
            order = NAMED_PARAM.findall(sql)
            sql = NAMED_PARAM.sub("%s", sql)
        start = sql.find(" VALUES (")
        if self.dialect != "postgresql" or not isinstance(statement, Insert) or start < 0:
            return sql, tuple(order), False
        depth, end = 0, start + len(" VALUES ")
        for end in range(end, len(sql)):
            depth += {"(": 1, ")": -1}.get(sql[end], 0)
            if depth == 0:
                break
        table = statement.table
        arrays = ", ".join(f"%b::{_ARRAY_TYPE.get(type(table.c[k].type).__name__, 'text')}[]" for k in keys)
        return (f"INSERT INTO {table.name} ({', '.join(keys)}) SELECT * FROM unnest({arrays})" + sql[end + 1:],
                tuple(keys), True)

    def bulk_insert(self, conn, table, rows: list[dict]) -> None:
        """A plain bulk INSERT of rows into a table, the way the push path writes its rows."""
        self._executemany(conn, f"insert:{table.name}:{id(table)}", table.insert, rows)
