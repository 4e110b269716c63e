"""The worker: runs the internship workflow and its activities on one task queue.

Start as many as you like (`python -m worker`); Temporal spreads the work among them.
"""

from __future__ import annotations

import asyncio
import logging
from concurrent.futures import ThreadPoolExecutor

from sqlalchemy.orm import sessionmaker
from temporalio.client import Client
from temporalio.worker import Worker

from activities.notifications import Mailer, Templates
from activities.payments import Payments
from activities.projection import Projection
from core.db import make_sessions
from core.settings import Settings, get_settings
from core.stripe_api import stripe_client
from core.temporal import connect
from workflows.internship import InternshipWorkflow

# Activities are synchronous (SQLAlchemy, Stripe SDK, smtplib) and run on this many threads.
ACTIVITY_THREADS = 32


def build_worker(
    client: Client, settings: Settings, sessions: sessionmaker, executor: ThreadPoolExecutor
) -> Worker:
    projection = Projection(sessions, Templates(), settings.public_base_url, settings.ops_email)
    mailer = Mailer(sessions, settings.smtp_host, settings.smtp_port, settings.mail_from)
    payments = Payments(stripe_client(settings), sessions, settings.public_base_url)
    return Worker(
        client,
        task_queue=settings.task_queue,
        workflows=[InternshipWorkflow],
        activities=[
            projection.record,
            mailer.deliver,
            payments.charge_employer,
            payments.pay_launcher,
            payments.refund_employer,
        ],
        activity_executor=executor,
        max_concurrent_activities=ACTIVITY_THREADS,
    )


async def main() -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s worker %(levelname)s %(message)s")
    settings = get_settings()
    if not settings.codec_key:
        logging.warning("CODEC_KEY is not set: workflow payloads are stored unencrypted")
    client = await connect(settings)
    with ThreadPoolExecutor(max_workers=ACTIVITY_THREADS) as executor:
        worker = build_worker(
            client,
            settings,
            make_sessions(settings.database_url, **settings.pool_options()),
            executor,
        )
        logging.info(
            "worker polling task queue %r on %s", settings.task_queue, settings.temporal_address
        )
        await worker.run()


if __name__ == "__main__":
    asyncio.run(main())
