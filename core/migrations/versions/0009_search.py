"""search: a full-text index of the internships' titles and descriptions

SQLite: an FTS5 table (`internships_fts`, Porter stemming) kept in step with the projection's
rows by triggers. Postgres: a GIN index on the English `tsvector` of the same words
(`ix_internships_search`). `api/service/search.py` queries either; no model describes them
(`core.db.modelled` keeps them out of autogenerate's comparison).

A later migration that rebuilds `internships` on SQLite (`batch_alter_table`: copy, drop,
rename) drops the triggers with the old table: it must create them again
(`tests/stack/test_search.py` migrates to head and fails if the index stops following).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 21:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The document Postgres indexes; api/service/search.py queries the same expression.
PG_DOCUMENT = "to_tsvector('english', title || ' ' || description)"

SQLITE_TRIGGERS = {
    "internships_fts_insert": """
        AFTER INSERT ON internships BEGIN
          INSERT INTO internships_fts (internship_id, title, description)
          VALUES (new.id, new.title, new.description);
        END""",
    # Titles and descriptions are written once, when the posting is projected: the projection's
    # other updates don't touch the index.
    "internships_fts_update": """
        AFTER UPDATE OF id, title, description ON internships
        WHEN old.id IS NOT new.id OR old.title IS NOT new.title
          OR old.description IS NOT new.description
        BEGIN
          DELETE FROM internships_fts WHERE internship_id = old.id;
          INSERT INTO internships_fts (internship_id, title, description)
          VALUES (new.id, new.title, new.description);
        END""",
    "internships_fts_delete": """
        AFTER DELETE ON internships BEGIN
          DELETE FROM internships_fts WHERE internship_id = old.id;
        END""",
}


def upgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        op.execute(
            "CREATE VIRTUAL TABLE internships_fts USING fts5("
            "internship_id UNINDEXED, title, description,"
            " tokenize = 'porter unicode61 remove_diacritics 2')"
        )
        for name, body in SQLITE_TRIGGERS.items():
            op.execute(f"CREATE TRIGGER {name} {body}")
        op.execute(
            "INSERT INTO internships_fts (internship_id, title, description)"
            " SELECT id, title, description FROM internships"
        )
    elif dialect == "postgresql":
        op.execute(f"CREATE INDEX ix_internships_search ON internships USING gin ({PG_DOCUMENT})")


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for name in SQLITE_TRIGGERS:
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        op.execute("DROP TABLE IF EXISTS internships_fts")
    elif dialect == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_internships_search")
