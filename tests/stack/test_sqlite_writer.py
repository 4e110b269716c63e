"""SQLite's writers take turns through one lock per process (`core.db.SQLiteWriterTurn`).

What would show if it went wrong: a write that fails with "database is locked" under load, or a
turn that is never given back, after which every later write in the process hangs.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.orm import sessionmaker

from core.db import make_sessions

WRITERS = 8
ROWS_EACH = 25


@pytest.fixture
def sessions(tmp_path: Path) -> sessionmaker:
    made = make_sessions(f"sqlite:///{tmp_path / 'turns.db'}")
    with made.begin() as db:
        db.execute(text("CREATE TABLE tally (writer INTEGER, n INTEGER)"))
    return made


def in_thread(work: object, *args: object) -> threading.Thread:
    thread = threading.Thread(target=work, args=args, daemon=True)  # type: ignore[arg-type]
    thread.start()
    return thread


def count(sessions: sessionmaker) -> int:
    with sessions() as db:
        return int(db.scalar(text("SELECT count(*) FROM tally")) or 0)


def test_concurrent_writers_all_land_one_at_a_time(sessions: sessionmaker) -> None:
    failures: list[BaseException] = []

    def write(writer: int) -> None:
        try:
            for n in range(ROWS_EACH):
                with sessions.begin() as db:
                    db.execute(text("SELECT count(*) FROM tally"))  # a read first, then writes
                    db.execute(text("INSERT INTO tally VALUES (:w, :n)"), {"w": writer, "n": n})
        except BaseException as err:  # noqa: BLE001 - reported by the assertion below
            failures.append(err)

    threads = [in_thread(write, w) for w in range(WRITERS)]
    deadline = time.monotonic() + 30
    for thread in threads:
        thread.join(timeout=max(0.0, deadline - time.monotonic()))
    assert not any(t.is_alive() for t in threads), "writers still waiting: a turn was kept"
    assert not failures
    assert count(sessions) == WRITERS * ROWS_EACH


def test_a_rolled_back_write_gives_the_turn_back(sessions: sessionmaker) -> None:
    with pytest.raises(RuntimeError), sessions.begin() as db:
        db.execute(text("INSERT INTO tally VALUES (1, 1)"))
        raise RuntimeError("the request failed half-way")

    def write() -> None:
        with sessions.begin() as db:
            db.execute(text("INSERT INTO tally VALUES (2, 1)"))

    writer = in_thread(write)
    writer.join(timeout=10)
    assert not writer.is_alive(), "the turn was never given back: later writes hang"
    assert count(sessions) == 1  # the rolled-back row is gone, the later one landed


def test_reads_do_not_wait_for_a_writer(sessions: sessionmaker) -> None:
    with sessions.begin() as db:
        db.execute(text("INSERT INTO tally VALUES (1, 1)"))
        seen: list[int] = []
        reader = in_thread(lambda: seen.append(count(sessions)))
        reader.join(timeout=5)
        assert not reader.is_alive() and seen == [0]  # WAL: the reader sees the last commit
