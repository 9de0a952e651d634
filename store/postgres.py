"""PostgreSQL, in as few round trips as the statements allow.

On PostgreSQL every statement is a round trip to the server (~0.1 ms on loopback, more
across hosts), and a hop of a chain is three short write transactions. peewee sends a
transaction's ``BEGIN`` as a round trip of its own; :class:`PostgresDatabase` sends it in
front of the transaction's first statement instead (``BEGIN; UPDATE ...``, one simple-query
message), and a transaction that ran no statement sends nothing at all.

The server also plans every statement it is sent anew (~45 us for the start compare-and-set
on this machine, a quarter of its time). The statements of the hot paths
(:class:`wgops.store.db.Statement`) are the same text every time: :meth:`execute_prepared`
prepares each once per connection (``PREPARE``) and then only executes it. A statement the
server cannot prepare (a parameter whose type it cannot infer) is remembered and sent as it
is. Behind a pooler that hands one client's statements to several server connections
(PgBouncer in transaction mode), prepared statements do not survive: a URL with
``?prepare=off`` turns them off.

A write that is usually one statement — a worker's start, its outcome — still pays a second
round trip for its ``COMMIT``. :meth:`PostgresDatabase.lead_alone` sends such a
transaction's first statement without the ``BEGIN``: the connection is in autocommit mode
(peewee keeps it so and sends ``BEGIN`` itself), so the statement commits as it runs, and
the ``BEGIN`` goes in front of the second statement, if one follows. It is for a write whose
first statement, whenever another follows it, changed nothing (a compare-and-set that did
not apply, a read): see :func:`wgops.store.db.lead_alone`.
"""

from __future__ import annotations

import itertools
import re
from typing import Any

import peewee

_PLACEHOLDER = re.compile(r"%(s|%)")
_PREPARE_SAVEPOINT = "wgops_prepare"


def numbered(sql: str) -> tuple[str, int]:
    """psycopg2's ``%s`` placeholders as PostgreSQL's ``$1, $2, ...``, and how many there are.
    A literal ``%%`` stays as it is: the text is sent through psycopg2's interpolation (peewee
    passes an empty parameter list), which makes it ``%``."""
    count = itertools.count(1)
    n = 0

    def number(match: re.Match) -> str:
        nonlocal n
        if match.group(1) == "%":
            return "%%"
        n = next(count)
        return f"${n}"
    return _PLACEHOLDER.sub(number, sql), n


class PostgresDatabase(peewee.PostgresqlDatabase):
    """peewee's PostgreSQL database with a transaction's ``BEGIN`` sent with its first
    statement (one round trip fewer per transaction) and the hot statements prepared."""

    def __init__(self, *args: Any, prepare: bool = True, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.prepare = prepare
        self._names: dict[str, str] = {}        # statement text -> its prepared name
        self._serial = itertools.count()          # (shared by the threads: next() is atomic)
        self._unpreparable: set[str] = set()

    def execute_prepared(self, sql: str, params: list[Any]) -> Any:
        """``execute_sql``, with ``sql`` prepared on this connection on first use."""
        if not self.prepare or sql in self._unpreparable:
            return self.execute_sql(sql, params)
        if self.is_closed():
            self.connect()
        prepared: dict[str, int] | None = getattr(self._state, "prepared", None)
        if prepared is None or getattr(self._state, "prepared_on", None) is not self._state.conn:
            prepared = self._state.prepared = {}
            self._state.prepared_on = self._state.conn
        arity = prepared.get(sql)
        if arity is None:
            arity = self._prepare(sql)
            if arity is None:
                return self.execute_sql(sql, params)
            prepared[sql] = arity
        name = self._names[sql]
        call = f"EXECUTE {name}({', '.join(['%s'] * arity)})" if arity else f"EXECUTE {name}"
        return self.execute_sql(call, params)

    def _prepare(self, sql: str) -> int | None:
        """PREPARE ``sql`` on this connection; its number of parameters, or None if the
        server refused it (remembered: it is never tried again). Inside a transaction the
        attempt sits in a savepoint, so a refusal leaves the transaction as it was."""
        text, arity = numbered(sql)
        name = self._names.get(sql)
        if name is None:
            name = self._names.setdefault(sql, f"wgops_{next(self._serial)}")
        prepare = f"PREPARE {name} AS {text}"
        self._lead(False)            # (a first use is prepared inside the transaction)
        inside = self.in_transaction()
        if inside:
            prepare = (f"SAVEPOINT {_PREPARE_SAVEPOINT}; {prepare}; "
                       f"RELEASE SAVEPOINT {_PREPARE_SAVEPOINT}")
        try:
            self.execute_sql(prepare)
        except peewee.ProgrammingError:
            # a statement the server cannot prepare as it is (say, a parameter whose type
            # nothing around it gives): sent as it is from now on
            if inside:
                self.execute_sql(f"ROLLBACK TO SAVEPOINT {_PREPARE_SAVEPOINT}; "
                                 f"RELEASE SAVEPOINT {_PREPARE_SAVEPOINT}")
            self._unpreparable.add(sql)
            return None
        return arity

    def lead_alone(self) -> None:
        """The transaction just begun sends its first statement on its own, committed as it
        runs (one round trip: no ``BEGIN``, no ``COMMIT``); a second statement opens the
        transaction. A no-op outside a transaction or once a statement was sent in it."""
        self._lead(True)

    def lead_in_transaction(self) -> None:
        """Undo :meth:`lead_alone` before the first statement: it opens the transaction after
        all (a write that finds its first statement must hold a lock to the end)."""
        self._lead(False)

    def _lead(self, alone: bool) -> None:
        pending = getattr(self._state, "pending_begin", None)
        if pending is not None:
            self._state.pending_begin = (*pending[:2], alone)

    def begin(self, isolation_level: Any = None) -> None:
        if isolation_level is None:
            isolation_level = self._isolation_level
        statement = "BEGIN"
        if isolation_level:
            statement = ("BEGIN TRANSACTION ISOLATION LEVEL "
                         f"{self._adapter.isolation_level_str(isolation_level)}")
        if self.is_closed():
            self.connect()
        # held per thread, with the connection it belongs to: sent by the next statement
        # (or the one after it, when the first leads alone)
        self._state.pending_begin = (self._state.conn, statement, False)

    def _take_begin(self) -> tuple[str, bool] | None:
        """The BEGIN still to send on this thread's connection and whether the next
        statement goes without it, now taken (None: none)."""
        pending = getattr(self._state, "pending_begin", None)
        if pending is None:
            return None
        self._state.pending_begin = None
        conn, statement, alone = pending
        if conn is not self._state.conn:
            # the connection was replaced inside the transaction: its statements must not
            # run outside one on the new connection
            raise peewee.InterfaceError("the database connection changed inside a transaction")
        return statement, alone

    def execute_sql(self, sql: str, params: Any = None) -> Any:
        pending = self._take_begin()
        if pending is not None:
            begin, alone = pending
            if alone:
                # sent alone (autocommit): the BEGIN waits for the next statement
                self._state.pending_begin = (self._state.conn, begin, False)
            else:
                sql = f"{begin}; {sql}"
        return super().execute_sql(sql, params)

    def commit(self) -> None:
        if getattr(self._state, "pending_begin", None) is not None:
            self._state.pending_begin = None       # nothing was sent: nothing to commit
            return
        super().commit()

    def rollback(self) -> None:
        if getattr(self._state, "pending_begin", None) is not None:
            self._state.pending_begin = None
            return
        super().rollback()

    def close(self) -> bool:
        self._state.pending_begin = None
        self._state.prepared = None          # a server's prepared statements die with it
        return super().close()
