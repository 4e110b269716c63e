"""Alembic environment: the URL comes from the service's settings (DATABASE_URL)."""

from alembic import context

from core.db import Base, make_engine, modelled
from core.settings import get_settings


def run() -> None:
    url = context.config.attributes.get("url") or get_settings().database_url
    engine = make_engine(url)
    with engine.connect() as connection:
        context.configure(
            connection=connection,
            target_metadata=Base.metadata,
            include_name=modelled,
            render_as_batch=connection.dialect.name == "sqlite",
        )
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


run()
