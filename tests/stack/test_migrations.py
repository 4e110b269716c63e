"""The schema Alembic builds is the one the models describe, and migration 0008 hands accounts
made before proof of inbox to their owners safely."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.migration import MigrationContext
from sqlalchemy import create_engine, text
from sqlalchemy.orm import sessionmaker

from core.accounts import account_of_token
from core.db import Base, Employer, Launcher, make_sessions, modelled
from dev.harness import ROOT


def alembic(url: str) -> Config:
    config = Config(str(ROOT / "alembic.ini"))
    config.set_main_option("script_location", str(ROOT / "core" / "migrations"))
    config.attributes["url"] = url
    return config


def test_the_migrated_schema_is_the_models(sessions: sessionmaker) -> None:
    """On the test run's own database (SQLite, then Postgres in CI), migrated to head."""
    with sessions.kw["bind"].connect() as conn:
        differences = compare_metadata(
            MigrationContext.configure(conn, opts={"include_name": modelled}), Base.metadata
        )
    # SQLite can't tell a JSON column from its stored type; nothing else may differ.
    assert [d for d in differences if "JSON" not in repr(d)] == []


def test_0008_keeps_old_tokens_until_the_owner_proves_the_inbox(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'old.db'}"
    command.upgrade(alembic(url), "0007")
    engine = create_engine(url)
    now = datetime(2026, 12, 1, tzinfo=UTC).replace(tzinfo=None)
    digest = hashlib.sha256(b"emp_old").hexdigest()
    with engine.begin() as conn:
        # An employer the API made (a card attached, nobody ever signed in by email), and a
        # launcher who signed in by a link and set up payouts.
        conn.execute(
            text(
                "INSERT INTO employers (id, name, email, company, token_hash, stripe_customer_id,"
                " stripe_payment_method, card_fingerprints, session_epoch, created_at) VALUES"
                " ('e1', 'Ada', 'ada@x.com', 'Acme', :digest, 'cus_1', 'pm_1', '[]', 0, :now)"
            ),
            {"digest": digest, "now": now},
        )
        conn.execute(
            text(
                "INSERT INTO launchers (id, name, email, skills, token_hash, stripe_account_id,"
                " payouts_enabled, payout_fingerprints, session_epoch, created_at) VALUES"
                " ('l1', 'Lin', 'lin@x.com', '[]', :digest, 'acct_1', 1, '[]', 0, :now)"
            ),
            {"digest": hashlib.sha256(b"lnc_old").hexdigest(), "now": now},
        )
        conn.execute(
            text(
                "INSERT INTO sign_in_links (token_hash, role, account_id, next_path, expires_at,"
                " used_at) VALUES ('h', 'launcher', 'l1', '/', :now, :now)"
            ),
            {"now": now},
        )
    engine.dispose()
    command.upgrade(alembic(url), "head")

    sessions = make_sessions(url)
    with sessions() as db:
        employer, launcher = db.get(Employer, "e1"), db.get(Launcher, "l1")
        assert employer is not None and launcher is not None
        # The employer's card waits for its owner's word; the launcher had proven the inbox.
        assert employer.inbox_proven_at is None and not employer.card_confirmed
        assert employer.chargeable_card is None
        assert launcher.inbox_proven_at is not None and launcher.payout_confirmed
        assert not launcher.portfolio_public
    # The old tokens still work, as named tokens, until the owner proves the inbox; the
    # employer is an organisation whose founder is its admin, under the employer's id.
    found = account_of_token(sessions, "emp_old")
    assert isinstance(found, tuple)
    member, organisation = found
    assert (member.id, member.role, member.email) == ("e1", "admin", "ada@x.com")
    assert organisation.id == "e1"
    sessions.kw["bind"].dispose()

    # And back: each account has its token again.
    command.downgrade(alembic(url), "0007")
    engine = create_engine(url)
    with engine.connect() as conn:
        assert conn.execute(text("SELECT token_hash FROM employers")).scalar() == digest
    engine.dispose()
