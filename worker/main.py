"""The worker: runs the internship workflow and its activities on one task queue, and the
outbox relay that delivers their emails.

Start as many as you like (`python -m worker`); Temporal spreads the work among them, and the
relays share the outbox.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import sessionmaker
from temporalio.client import Client
from temporalio.worker import Worker

from activities.notifications import Mailer
from activities.payments import Payments
from activities.projection import Projection
from core import known_secrets, logs, replies
from core.conversations import Reader
from core.db import make_sessions
from core.emails import Templates
from core.settings import Settings, get_settings
from core.stripe_api import stripe_client
from core.temporal import connect, metrics_runtime
from worker.message_emails import MessageEmails
from worker.outbox import OpsAlerts, OutboxRelay
from workflows.internship import InternshipWorkflow


def pool_options(settings: Settings) -> dict[str, Any]:
    """The worker's database pool: DB_POOL_SIZE kept, and enough overflow for every activity
    thread and the outbox relay to hold a connection at once (each holds one at most).
    DB_MAX_OVERFLOW sizes the API's pools; a worker with more threads than it allows would have
    its activities wait DB_POOL_TIMEOUT_SECONDS for a connection and fail."""
    options = settings.pool_options()
    at_once = settings.worker_activity_threads + 1  # + the outbox relay's
    options["max_overflow"] = max(options["max_overflow"], at_once - options["pool_size"])
    return options


def build_relay(settings: Settings, sessions: sessionmaker) -> OutboxRelay:
    mailer = Mailer(settings.smtp_host, settings.smtp_port, settings.mail_from)
    ops = OpsAlerts(
        Templates(), settings.ops_email, settings.public_base_url, settings.ops_time_zone
    )
    secret = replies.reply_secret(settings)

    def reply_address(thread_id: int, reader: Reader, now: datetime) -> str:
        return replies.reply_address(
            thread_id,
            reader.role,
            reader.id,
            secret=secret,
            domain=settings.reply_domain,
            now=now,
            days=settings.reply_address_days,
        )

    messages = MessageEmails(
        sessions,
        Templates(),
        settings.public_base_url,
        timedelta(minutes=settings.message_quiet_minutes),
        reply_address,
    )
    return OutboxRelay(
        sessions,
        mailer,
        ops,
        poll_seconds=settings.mail_poll_seconds,
        lease=timedelta(seconds=settings.outbox_lease_seconds),
        messages=messages,
    )


def build_worker(
    client: Client,
    settings: Settings,
    sessions: sessionmaker,
    executor: ThreadPoolExecutor,
    relay: OutboxRelay,
) -> Worker:
    projection = Projection(
        sessions,
        Templates(),
        settings.public_base_url,
        settings.ops_email,
        settings.ops_time_zone,
        emails_queued=relay.wake.set,
    )
    payments = Payments(stripe_client(settings), sessions, settings.public_base_url)
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=[InternshipWorkflow],
        activities=[
            projection.record,
            payments.charge_employer,
            payments.pay_launcher,
            payments.refund_employer,
        ],
        activity_executor=executor,
        max_concurrent_activities=settings.worker_activity_threads,
        max_concurrent_local_activities=settings.worker_activity_threads,
        max_concurrent_workflow_tasks=settings.worker_workflow_tasks,
        max_cached_workflows=settings.worker_cached_workflows,
    )


@asynccontextmanager
async def running(
    client: Client, settings: Settings, sessions: sessionmaker
) -> AsyncIterator[Worker]:
    """The Temporal worker and the outbox relay, running until the block ends."""
    relay = build_relay(settings, sessions)
    with ThreadPoolExecutor(max_workers=settings.worker_activity_threads) as executor:
        worker = build_worker(client, settings, sessions, executor, relay)
        async with worker:
            delivering = asyncio.create_task(relay.run())
            try:
                yield worker
            finally:
                relay.stop()
                await delivering


async def main() -> None:
    settings = get_settings()
    logs.configure("worker", settings.log_format)
    try:  # off this machine, no start with a known or weak secret
        known_secrets.enforce(settings, logging.getLogger("worker"))
    except known_secrets.UnsafeSecrets:
        raise SystemExit(2) from None
    port = settings.worker_metrics_port
    runtime = metrics_runtime(settings.worker_metrics_host, port) if port else None
    client = await connect(settings, runtime)
    sessions = make_sessions(settings.database_url, **pool_options(settings))
    async with running(client, settings, sessions):
        logging.info(
            "worker polling task queue %r on %s", settings.task_queue, settings.temporal_address
        )
        # Until SIGTERM (docker stop, systemd) or SIGINT (Ctrl-C cancels the task): leaving the
        # block stops polling, lets running activities finish and stops the relay cleanly.
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        await stop.wait()


if __name__ == "__main__":
    asyncio.run(main())
