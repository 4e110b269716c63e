"""The full-text search on the databases the service runs on: a fresh database of each kind
migrated to head (SQLite always; the run's own, Postgres when DATABASE_URL names one), rows
written as the projection writes them, `search.find` asked as the pages and JSON ask it.

Migration 0009's index follows the rows (SQLite: triggers; Postgres: an expression index), is
built for rows that were there before it, and is what Postgres uses to answer."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import create_engine, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker

from api.service import search
from core.accounts import founder_of
from core.db import Employer, Internship, Launcher, make_sessions, normalize_url
from core.internship import Actor, Role, Stage
from dev.harness import migrate
from worker.setup import alembic_config

OPS = Actor(Role.OPS, "ops")
NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)


@pytest.fixture(params=["sqlite", "run"])
def fresh_url(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """An empty database: a SQLite file, or a new database on the run's Postgres server."""
    run_url = os.environ.get("DATABASE_URL", "")
    if request.param == "sqlite" or not run_url.startswith("postgres"):
        yield f"sqlite:///{tmp_path_factory.mktemp('search') / 'fresh.db'}"
        return
    server = make_url(normalize_url(run_url))
    name = f"search_{uuid.uuid4().hex[:12]}"
    admin = create_engine(server, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def employer(db: Session, name: str = "Ada Lovelace") -> Employer:
    e = Employer(
        id=uuid.uuid4().hex[:16],
        name=name,
        email=f"{uuid.uuid4().hex[:8]}@example.com",
        company="Acme",
        stripe_customer_id="cus_x",
    )
    db.add(e)
    db.flush()
    db.add(founder_of(e))
    return e


def internship(db: Session, owner: Employer, title: str, description: str, age: int = 0) -> str:
    row = Internship(
        id=uuid.uuid4().hex[:16],
        employer_id=owner.id,
        title=title,
        description=description,
        company=owner.company,
        category="marketing",
        stage=Stage.POSTED.value,
        estimated_hours=10,
        fee_cents=40000,
        currency="usd",
        duration_days=14,
        posted_at=NOW - timedelta(minutes=age),
        updated_at=NOW,
    )
    db.add(row)
    db.flush()
    return row.id


def found(sessions: sessionmaker, words: str = "", anything: str = "") -> list[str]:
    with sessions() as db:
        wanted = search.Criteria(words=words, anything=anything)
        return [r.id for r in search.find(db, OPS, wanted, search.MAX_PAGE).rows]


def test_words_match_by_prefix_and_stem_in_the_title_and_description(fresh_url: str) -> None:
    migrate(fresh_url)
    sessions = make_sessions(fresh_url)
    with sessions.begin() as db:
        ada = employer(db)
        designer = internship(db, ada, "Brand designer", "Logos for a bakery.", age=1)
        sheets = internship(db, ada, "Spreadsheet cleanup", "Tidy the sales pipeline.", age=2)
        survey = internship(db, ada, "Customer survey", "Design a survey of our shoppers.", age=3)
    assert found(sessions, "design") == [designer, survey]  # newest first
    assert found(sessions, "DESIGNERS") == [designer, survey]  # stemmed, any case
    assert found(sessions, "spreadsheets pipeline") == [sheets]  # every word, either field
    assert found(sessions, "spreadsheet bakery") == []
    assert found(sessions, "shopper") == [survey]
    for syntax in ('"', "AND(", "*", "NEAR(a b)", "design OR", "-logos", "title:brand", "'"):
        found(sessions, syntax)  # never an error: none of it is query syntax
    assert found(sessions, "bakery OR shoppers") == []  # OR is no operator: every word counts
    # A changed title is searched by its new words alone; a deleted row is gone.
    with sessions.begin() as db:
        row = db.get(Internship, designer)
        assert row is not None
        row.title = "Menu illustrator"
    assert found(sessions, "illustrator") == [designer]
    assert found(sessions, "brand") == []
    with sessions.begin() as db:
        db.delete(db.get(Internship, sheets))
    assert found(sessions, "spreadsheet") == []
    sessions.kw["bind"].dispose()


def test_ops_find_by_id_and_by_a_partys_name_or_email(fresh_url: str) -> None:
    migrate(fresh_url)
    sessions = make_sessions(fresh_url)
    with sessions.begin() as db:
        ada, bob = employer(db, "Ada Lovelace"), employer(db, "Bob 100%_Sure")
        lee = Launcher(
            id="l1", name="Lee Wu", email="lee.wu@example.org", stripe_account_id="acct_1"
        )
        db.add(lee)
        work = internship(db, ada, "Pricing study", "Competitors' prices.")
        other = internship(db, bob, "Logo refresh", "A new logo.")
        db.flush()
        db.get(Internship, work).launcher_id = "l1"  # type: ignore[union-attr]
    assert found(sessions, anything="LEE.WU@example") == [work]
    assert found(sessions, anything="lovelace") == [work]
    assert found(sessions, anything=other) == [other]
    assert found(sessions, anything="100%_") == [other]  # LIKE's wildcards are plain text
    assert found(sessions, anything="l_velace") == []  # "_" is no wildcard either
    assert found(sessions, anything="pricing") == [work]
    sessions.kw["bind"].dispose()


def test_the_index_is_built_for_rows_from_before_it_and_goes_with_a_downgrade(
    fresh_url: str,
) -> None:
    migrate(fresh_url)
    config = alembic_config(fresh_url)
    command.downgrade(config, "0008")
    sessions = make_sessions(fresh_url)
    with sessions.begin() as db:  # the rows as revision 0008 had them (today's models have more)
        db.execute(
            text(
                "INSERT INTO employers (id, name, email, company, stripe_customer_id,"
                " card_fingerprints, card_confirmed, created_at)"
                " VALUES ('e1', 'Ada', 'ada@example.com', 'Acme', 'cus_x', '[]', true, :now)"
            ),
            {"now": NOW},
        )
        db.execute(
            text(
                "INSERT INTO internships (id, employer_id, title, description, company,"
                " category, stage, estimated_hours, fee_cents, currency, duration_days, overdue,"
                " escalation_level, disputed, charged_cents, paid_cents, refunded_cents,"
                " payment_refused, posted_at, updated_at, last_seq) VALUES ('i1', 'e1',"
                " 'Podcast editing', 'Three episodes.', 'Acme', 'marketing', 'posted', 10,"
                " 40000, 'usd', 14, false, 0, false, 0, 0, 0, false, :now, :now, 0)"
            ),
            {"now": NOW},
        )
    older = "i1"
    command.upgrade(config, "head")
    assert found(sessions, "podcast") == [older]
    command.downgrade(config, "0008")
    command.upgrade(config, "head")
    assert found(sessions, "episodes") == [older]
    sessions.kw["bind"].dispose()


def test_postgres_answers_from_the_index(fresh_url: str) -> None:
    """The query's document is the index's expression, so Postgres can use the index."""
    migrate(fresh_url)
    sessions = make_sessions(fresh_url)
    with sessions() as db:
        if db.get_bind().dialect.name != "postgresql":
            tables = db.scalars(text("SELECT name FROM sqlite_master WHERE type = 'trigger'"))
            assert {"internships_fts_insert", "internships_fts_update"} <= set(tables)
            return
        db.execute(text("SET enable_seqscan = off"))
        query = select(Internship.id).where(search.full_text(db, ["design"]))
        compiled = query.compile(db.get_bind(), compile_kwargs={"literal_binds": True})
        plan = "\n".join(db.scalars(text(f"EXPLAIN {compiled}")))
    assert "ix_internships_search" in plan, plan
    sessions.kw["bind"].dispose()
