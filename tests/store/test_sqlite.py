"""SQLite's group commit and its behaviour when another process holds the write lock."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest
from sqlalchemy import Connection

from pushgate.store.database import Database


class Refused(Exception):
    pass


def _insert(conn: Connection, value: str) -> str:
    conn.exec_driver_sql("INSERT INTO t (v) VALUES (?)", (value,))
    return value


def _refuse(conn: Connection, value: str) -> str:
    conn.exec_driver_sql("INSERT INTO t (v) VALUES (?)", (value,))
    raise Refused(value)


def _values(conn: Connection) -> list[str]:
    return [r[0] for r in conn.exec_driver_sql("SELECT v FROM t ORDER BY v")]


@pytest.fixture
async def db(tmp_path: Path):
    database = Database(f"sqlite:///{tmp_path / 'g.db'}")
    await database.write(lambda c: c.exec_driver_sql("CREATE TABLE t (v TEXT UNIQUE)"))
    yield database
    await database.dispose()


async def test_a_failing_write_rolls_back_alone_within_its_batch(db: Database) -> None:
    results = await asyncio.gather(
        db.write(_insert, "a"),
        db.write(_refuse, "b"),
        db.write(_insert, "c"),
        db.write(_insert, "a"),  # unique violation: an error for this caller only
        return_exceptions=True,
    )
    assert results[0] == "a" and results[2] == "c"
    assert isinstance(results[1], Refused)
    assert "UNIQUE" in str(results[3])
    assert await db.read(_values) == ["a", "c"]


async def test_writes_wait_without_blocking_while_another_process_writes(
    db: Database, tmp_path: Path
) -> None:
    other = sqlite3.connect(tmp_path / "g.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO t (v) VALUES ('other')")
    pending = asyncio.ensure_future(db.write(_insert, "mine"))
    ticks = 0
    for _ in range(20):  # the event loop keeps turning while the write waits for the lock
        await asyncio.sleep(0.005)
        ticks += 1
    assert not pending.done()
    assert await db.read(_values) == []  # reads go on meanwhile
    other.execute("COMMIT")
    other.close()
    assert await asyncio.wait_for(pending, 5) == "mine"
    assert ticks == 20
    assert await db.read(_values) == ["mine", "other"]
