"""`python -m worker.setup`: the one-shot job a deployment runs before the API and the workers
(docker-compose.yml's `setup` service). Safe to run again at every deploy:

1. migrates the app database (DATABASE_URL) to Alembic's head;
2. on Temporal (TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TLS or API key as the service connects),
   registers the namespace if the cluster has none by that name (a fresh self-hosted cluster;
   on Temporal Cloud the namespace already exists) and the custom search attributes that are
   missing (`core/search_attributes.py`);
3. with FILE_STORAGE=s3, creates the bucket (S3_BUCKET) if the object storage has none by that
   name (the compose file's MinIO starts empty; on Amazon S3, create it yourself if the key may
   not: then this step finds it and does nothing).

Each step waits, up to `--wait` seconds, while its server is not up yet, and logs what it did.
Anything else wrong ends the job with a non-zero status, so that what starts after it (Compose's
`service_completed_successfully`) does not start.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
from collections.abc import Sequence
from datetime import timedelta
from importlib import resources
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from botocore.exceptions import BotoCoreError, ClientError, EndpointConnectionError
from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError
from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import (
    AddSearchAttributesRequest,
    ListSearchAttributesRequest,
)
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest, RegisterNamespaceRequest
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from core import logs, search_attributes
from core.db import make_engine
from core.files import S3Store
from core.settings import Settings, get_settings
from core.temporal import connect

log = logging.getLogger("setup")

# Worth waiting out: the server is starting, or a namespace registered a moment ago is not yet
# known to every part of it.
TRANSIENT = {RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.NOT_FOUND}


class SetupError(Exception):
    """Something setup cannot fix by waiting: reported, and the job fails."""


class Patience:
    """Pauses between tries (0.5 s, doubling, at most 5 s) until `seconds` have gone by."""

    def __init__(self, what: str, seconds: float) -> None:
        self.what, self.seconds = what, seconds
        self.deadline = time.monotonic() + seconds
        self.delay = 0.5

    def pause(self, err: BaseException) -> float:
        left = self.deadline - time.monotonic()
        if left <= 0:
            raise SetupError(f"{self.what} did not answer within {self.seconds:g}s: {err}") from err
        delay, self.delay = min(self.delay, left), min(self.delay * 2, 5.0)
        log.info("waiting for %s (%s); trying again in %.1fs", self.what, err, delay)
        return delay


# --- the app database ------------------------------------------------------------------------


def migrations_folder() -> Path:
    """core/migrations/: package data of the installed distribution (the wheel in the image, the
    checkout under an editable install), wherever the core package is. Neither the working
    directory nor alembic.ini matters."""
    folder = Path(str(resources.files("core") / "migrations"))
    if not (folder / "env.py").is_file():
        raise SetupError(f"no Alembic migrations in the installed core package ({folder})")
    return folder


def alembic_config(url: str) -> Config:
    """Alembic's configuration, built here rather than read from alembic.ini."""
    config = Config()
    config.set_main_option("script_location", str(migrations_folder()))
    config.attributes["url"] = url  # read by migrations/env.py instead of DATABASE_URL
    return config


def current_revision(url: str) -> str | None:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            return MigrationContext.configure(connection).get_current_revision()
    finally:
        engine.dispose()


def migrate(url: str, wait: float) -> tuple[str | None, str | None]:
    """Upgrade the database at `url` to head; (revision before, revision after)."""
    shown = make_url(url).render_as_string(hide_password=True)
    patience = Patience(f"the database at {shown}", wait)
    while True:
        try:
            before = current_revision(url)
            break
        except OperationalError as err:  # not accepting connections yet
            time.sleep(patience.pause(err.orig or err))
    config = alembic_config(url)
    head = ScriptDirectory.from_config(config).get_current_head()
    if before == head:
        log.info("database %s is at head (%s): nothing to migrate", shown, head)
        return before, before
    command.upgrade(config, "head")
    after = current_revision(url)
    log.info("database %s migrated from %s to %s", shown, before or "empty", after)
    return before, after


# --- Temporal ----------------------------------------------------------------------------------


async def ensure_namespace(client: Client, retention: timedelta) -> bool:
    """Register the client's namespace if the cluster has none by that name; True if it did."""
    try:
        await client.workflow_service.describe_namespace(
            DescribeNamespaceRequest(namespace=client.namespace)
        )
        log.info("namespace %r exists", client.namespace)
        return False
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
    request = RegisterNamespaceRequest(namespace=client.namespace)
    request.workflow_execution_retention_period.FromTimedelta(retention)
    try:
        await client.workflow_service.register_namespace(request)
    except RPCError as err:
        if err.status != RPCStatusCode.ALREADY_EXISTS:  # another setup job went first
            raise
    days = retention / timedelta(days=1)
    log.info("namespace %r registered (retention %g days)", client.namespace, days)
    return True


async def _registered(client: Client) -> dict[str, IndexedValueType.ValueType] | None:
    """Custom search attributes and their types, or None where the server cannot list them
    (Temporal's time-skipping test server)."""
    try:
        listed = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=client.namespace)
        )
    except RPCError as err:
        if err.status == RPCStatusCode.UNIMPLEMENTED:
            return None
        raise
    return {k: IndexedValueType.ValueType(v) for k, v in listed.custom_attributes.items()}


async def register_search_attributes(client: Client) -> dict[str, str]:
    """Register each custom search attribute the namespace lacks, one at a time (so one that
    exists does not fail the others); name -> "registered" or "already registered"."""
    registered = await _registered(client)
    outcome: dict[str, str] = {}
    for key in search_attributes.ALL:
        kind = IndexedValueType.ValueType(key.indexed_value_type.value)
        type_name = _type_name(kind)
        if registered is not None and key.name in registered:
            if registered[key.name] != kind:
                found = _type_name(registered[key.name])
                raise SetupError(f"search attribute {key.name} is {found}, not {type_name}")
            outcome[key.name] = "already registered"
        else:
            outcome[key.name] = await _add(client, key.name, kind)
        log.info("search attribute %s (%s): %s", key.name, type_name, outcome[key.name])
    return outcome


def _type_name(kind: IndexedValueType.ValueType) -> str:
    """As the CLI and the UI spell it: INDEXED_VALUE_TYPE_KEYWORD -> Keyword."""
    return IndexedValueType.Name(kind).removeprefix("INDEXED_VALUE_TYPE_").title()


async def _add(client: Client, name: str, kind: IndexedValueType.ValueType) -> str:
    try:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(namespace=client.namespace, search_attributes={name: kind})
        )
        return "registered"
    except RPCError as err:
        if err.status == RPCStatusCode.ALREADY_EXISTS:
            return "already registered"
        if err.status in (RPCStatusCode.PERMISSION_DENIED, RPCStatusCode.UNIMPLEMENTED):
            title = _type_name(kind)
            raise SetupError(
                f"cannot register search attribute {name} ({title}): {err.message}. On Temporal "
                "Cloud, add it to the namespace in the Cloud UI or with `tcld namespace "
                f"search-attributes add -n {client.namespace} --sa '{name}={title}'`"
            ) from err
        raise


def _transient(err: Exception) -> bool:
    if isinstance(err, RPCError):
        return err.status in TRANSIENT
    return isinstance(err, RuntimeError) and str(err).startswith("Failed client connect")


async def prepare_temporal(settings: Settings, wait: float, retention: timedelta) -> None:
    """Connect as the service does, then the namespace and the search attributes."""
    patience = Patience(f"Temporal at {settings.temporal_address}", wait)
    client: Client | None = None
    while True:
        try:
            client = client or await connect(settings)
            await ensure_namespace(client, retention)
            await register_search_attributes(client)
            return
        except (RPCError, RuntimeError) as err:
            if not _transient(err):
                raise
            await asyncio.sleep(patience.pause(err))


# --- the object storage ------------------------------------------------------------------------


def prepare_storage(settings: Settings, wait: float) -> bool | None:
    """The bucket of FILE_STORAGE=s3, created if missing: True if it was, False if it was there,
    None with folder storage (nothing to do)."""
    if settings.file_storage != "s3":
        log.info("files are kept in a folder (FILE_STORAGE=folder): no bucket to prepare")
        return None
    store = S3Store.from_settings(settings)
    where = settings.s3_endpoint_url or "Amazon S3"
    patience = Patience(f"the object storage at {where}", wait)
    while True:
        try:
            created = store.ensure_bucket()
            break
        except EndpointConnectionError as err:  # not accepting connections yet
            time.sleep(patience.pause(err))
        except ClientError as err:
            if err.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) >= 500:
                time.sleep(patience.pause(err))  # starting up (MinIO answers 503 at first)
                continue
            bucket = settings.s3_bucket
            raise SetupError(f"cannot prepare bucket {bucket!r} at {where}: {err}") from err
        except BotoCoreError as err:
            raise SetupError(f"cannot reach the object storage at {where}: {err}") from err
    said = "created" if created else "exists"
    log.info("bucket %r at %s %s", settings.s3_bucket, where, said)
    return created


# --- the job -----------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m worker.setup", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--wait",
        type=float,
        default=120,
        help="seconds to wait for the database, Temporal and the object storage to answer "
        "(default 120)",
    )
    parser.add_argument(
        "--retention-days",
        type=float,
        default=30,
        help="retention of closed workflows, for a namespace setup registers (default 30)",
    )
    parser.add_argument(
        "--skip",
        choices=("migrations", "temporal", "storage"),
        action="append",
        default=[],
        help="leave out a step (repeatable)",
    )
    args = parser.parse_args(argv)
    settings = get_settings()
    logs.configure("setup", settings.log_format)
    try:
        if "migrations" not in args.skip:
            migrate(settings.database_url, args.wait)
        if "temporal" not in args.skip:
            retention = timedelta(days=args.retention_days)
            asyncio.run(prepare_temporal(settings, args.wait, retention))
        if "storage" not in args.skip:
            prepare_storage(settings, args.wait)
    except SetupError as err:  # anything else fails the job with its traceback
        log.error("setup failed: %s", err)
        return 1
    log.info("setup done")
    return 0


if __name__ == "__main__":
    code = main()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    # Exit without interpreter finalization: the Temporal SDK's native threads may still be
    # alive, and finalizing around them can abort the process after the work is done.
    os._exit(code)
