"""Every setting of the service, read from the environment (or a `.env` file).

Lifecycle policy durations live here and nowhere else; the API snapshots them into each
internship's input at posting time so a running workflow never re-reads configuration.
"""

from __future__ import annotations

from datetime import timedelta
from functools import lru_cache
from typing import Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from core import zones
from core.internship import TASK_QUEUE, Policy


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    database_url: str = "sqlite:///data/app.db"
    # Where the service keeps files of its own (profile images under files/); `make run`'s
    # DATA_DIR names the same folder.
    data_dir: str = "data"
    # Connections each process keeps, may add under load, and waits for before answering 503.
    db_pool_size: int = Field(default=10, ge=1)
    db_max_overflow: int = Field(default=20, ge=0)
    db_pool_timeout_seconds: float = Field(default=2, gt=0)
    temporal_address: str = "127.0.0.1:7233"
    temporal_namespace: str = "default"
    temporal_ui_port: int = 8233  # the dev server's UI under `make run`
    # A secured cluster or Temporal Cloud: mTLS (client certificate and key, and the CA when it
    # is private; files), or an API key (TLS on). Unset: plain gRPC, as the dev server speaks.
    temporal_tls_cert: str | None = None
    temporal_tls_key: str | None = None
    temporal_tls_ca: str | None = None
    temporal_api_key: str | None = None
    task_queue: str = TASK_QUEUE

    stripe_api_key: str = "sk_test_local"
    stripe_api_base: str = "http://127.0.0.1:12111"
    stripe_webhook_secret: str = "whsec_local_dev_secret"
    # Where browsers reach the local Stripe server's pages when the API reaches it at another
    # address (compose's dev profile: http://localhost:12111, the API calls http://stripe:12111);
    # the card and payouts forms may send the browser there. Unset: STRIPE_API_BASE.
    stripe_public_url: str | None = None

    # The worker (each process): activity threads (synchronous SQLAlchemy, Stripe and SMTP
    # calls; also the database connections it may use at once), workflow tasks processed at
    # once, and workflows kept in memory between tasks (the sticky cache: more is faster replay-
    # free work, at the cost of memory).
    worker_activity_threads: int = Field(default=32, ge=1)
    # A worker runs Python on one core at a time (the GIL), so a task taken beyond what it can
    # work on only waits inside the worker, where Temporal's 10 s task timeout runs (100 tasks
    # at once: 1.2 s per task at the median under load). 8 keeps the rest in the task queue,
    # where no timeout runs and any worker may take them, at the same throughput (bench/results.md).
    worker_workflow_tasks: int = Field(default=8, ge=2)
    # About 0.17 MB each (measured): 250 keeps a worker near 200 MB however many internships
    # wait on timers; an evicted one replays its history (tens of events) on its next task.
    worker_cached_workflows: int = Field(default=250, ge=0)
    # Where the worker serves the Temporal SDK's Prometheus metrics (port 0: not at all). This
    # machine only by default; 0.0.0.0 in a container, for a Prometheus on another host. A port
    # another worker on the host holds already: a free one is used and logged.
    worker_metrics_host: str = "127.0.0.1"
    worker_metrics_port: int = Field(default=9464, ge=0, le=65535)
    # Logs as one JSON object per line (for a log pipeline) or as plain text (for a terminal).
    log_format: Literal["text", "json"] = "text"
    # The outbox relay checks for due emails this often (it is woken at once by its own worker).
    mail_poll_seconds: float = Field(default=1, gt=0)
    # How long a relay holds the emails it is sending: a relay that died frees them after this.
    outbox_lease_seconds: float = Field(default=60, gt=0)

    smtp_host: str = "127.0.0.1"
    smtp_port: int = 1025
    mail_from: str = "Micro-internships <noreply@microinternships.local>"
    ops_email: str = "ops@microinternships.local"
    # The zone ops read every moment in, on their pages and in their emails (an IANA name).
    ops_time_zone: str = "UTC"

    ops_api_token: str = "ops-dev-token"
    # Signs the web pages' session cookies: a long random string outside development.
    session_secret: str = "dev-session-secret-change-me"
    # How long a sign-in link sent by email can be used (once).
    sign_in_link_minutes: int = Field(default=15, ge=1, le=60)
    # How long an invitation to join a company's account can be used (once).
    colleague_invitation_days: int = Field(default=7, ge=1, le=30)
    # Replies by email: the domain of the per-recipient Reply-To addresses of message emails.
    reply_domain: str = "reply.microinternships.local"
    # How long such an address takes replies; a reply after that is refused, never posted.
    reply_address_days: int = Field(default=90, ge=1, le=3650)
    # Signs the mail provider's inbound-email webhook calls: long and random outside development.
    inbound_email_secret: str = "whinbound_local_dev_secret"
    # A web session ends this long after it began, however busy it is (then sign in again).
    session_days: float = Field(default=14, gt=0)
    ops_session_hours: float = Field(default=12, gt=0)
    # Where ops open a workflow in the Temporal UI (the dev server's UI under `make run`).
    temporal_ui_url: str = "http://127.0.0.1:8233"
    # Base64 of 32 random bytes; unset means payloads are stored unencrypted (dev only).
    codec_key: str | None = None
    # Let the Temporal UI on this machine decode without a token (dev); production keeps it off.
    codec_allow_loopback: bool = False
    codec_cors_origins: list[str] = ["http://127.0.0.1:8233", "http://localhost:8233"]

    public_base_url: str = "http://127.0.0.1:8000"
    api_host: str = "127.0.0.1"
    api_port: int = 8000
    # API processes serving the port (each with its own pool of DB_POOL_SIZE connections).
    api_workers: int = Field(default=1, ge=1)
    # Requests one API process serves at once; beyond that it answers 503 with Retry-After.
    api_max_in_flight: int = Field(default=500, ge=1)
    # Request bodies over these are 413 before anything reads them: the largest valid request
    # (a 10,000-character description, every character escaped) fits the first; Stripe's
    # webhook and the codec get the second.
    max_body_bytes: int = Field(default=128 * 1024, ge=1024)
    max_large_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    # The largest profile image (an avatar or a logo) accepted, as sent. The settings page's
    # upload forms take bodies up to twice this, so a file a little too big is refused beside
    # its field with the rest of the form kept, not by the 413 page.
    max_image_bytes: int = Field(default=5 * 1024 * 1024, ge=1024)
    # The largest file sent in an internship's conversation, and all of one internship's files
    # together (core/attachments.py checks each file's type by its content).
    max_file_bytes: int = Field(default=25 * 1024 * 1024, ge=1024)
    internship_files_quota_bytes: int = Field(default=250 * 1024 * 1024, ge=1024)
    # Where the files people send and the profile images are kept (core/files.py): a folder
    # under DATA_DIR (one host), or a bucket of S3-compatible object storage (every host).
    file_storage: Literal["folder", "s3"] = "folder"
    # The object storage's address (MinIO: http://minio:9000); unset: Amazon S3 itself.
    s3_endpoint_url: str | None = None
    # The bucket, private: files are served by the API, never by a link to the storage.
    s3_bucket: str = "microinternships"
    # The bucket's region (AWS's; MinIO takes any).
    s3_region: str = "us-east-1"
    # The access key's id and secret; unset both: boto3's own chain (AWS_* variables, a role).
    s3_access_key_id: str | None = None
    s3_secret_access_key: str | None = None
    # Requests a client may make for each guarded action, in `limits` notation ("5/minute;30/
    # hour"), counted per IP address and per account; beyond them, 429 with Retry-After. Counted
    # in Redis when REDIS_URL is set (every API process together), else in each process's memory.
    redis_url: str | None = None
    rate_limit_sign_up: str = "5/minute;30/hour"
    rate_limit_sign_in: str = "5/minute;30/hour"
    rate_limit_tokens: str = "10/minute;50/hour"
    rate_limit_postings: str = "10/minute;100/hour"
    rate_limit_applications: str = "10/minute;100/hour"
    rate_limit_invitations: str = "20/minute;200/hour"
    rate_limit_messages: str = "30/minute;300/hour"
    # A new message is emailed at once, then at most once per thread and person in this many
    # minutes, listing everything that arrived meanwhile.
    message_quiet_minutes: float = Field(default=10, ge=0)
    # Applications a posting holds open at once; beyond that, launchers are told it is full.
    max_open_applications: int = Field(default=200, ge=1)

    # Lifecycle policies (docs/architecture.md), in days unless named otherwise.
    applicants_reminder_days: float = 7
    posting_expiry_days: float = 14
    kickoff_reminder_days: float = 5
    kickoff_escalation_days: float = 10
    due_reminder_hours: float = 48
    overdue_escalation_days: float = 3
    overdue_cancel_days: float = 10
    review_reminder_days: float = 5
    review_auto_approve_days: float = 7
    max_revision_rounds: int = 2
    revision_days: float = 3
    max_extension_days: float = 14
    payout_reminder_days: float = 3
    feedback_window_days: float = 14
    dispute_reminder_days: float = 2
    dispute_decision_days: float = 7
    launcher_share_percent: int = 90
    min_hourly_fee_cents: int = 2000
    # Divides every duration a workflow waits for: 86400 makes a day last one second.
    time_scale: float = Field(default=1, gt=0)

    @field_validator(
        "temporal_tls_cert",
        "temporal_tls_key",
        "temporal_tls_ca",
        "temporal_api_key",
        "s3_endpoint_url",
        "s3_access_key_id",
        "s3_secret_access_key",
        mode="before",
    )
    @classmethod
    def _empty_is_unset(cls, value: Any) -> Any:
        """`TEMPORAL_API_KEY=` (an env file's empty line, as .env.example ships it) means no key:
        None, never "" handed to the SDK as a key; the same for the mTLS files and the object
        storage's address and keys."""
        return None if isinstance(value, str) and not value.strip() else value

    @field_validator("ops_time_zone")
    @classmethod
    def _a_known_zone(cls, value: str) -> str:
        if not zones.known(value):
            raise ValueError(
                f"{value!r} is not a time zone: use an IANA name such as UTC or Europe/London"
            )
        return value

    @model_validator(mode="after")
    def _tls_pair(self) -> Settings:
        if bool(self.temporal_tls_cert) != bool(self.temporal_tls_key):
            raise ValueError(
                "TEMPORAL_TLS_CERT and TEMPORAL_TLS_KEY go together: set both or neither"
            )
        return self

    @model_validator(mode="after")
    def _s3_key_pair(self) -> Settings:
        pair = (self.s3_access_key_id, self.s3_secret_access_key)
        if self.file_storage == "s3" and bool(pair[0]) != bool(pair[1]):
            raise ValueError(
                "S3_ACCESS_KEY_ID and S3_SECRET_ACCESS_KEY go together: set both or neither"
            )
        return self

    def pool_options(self) -> dict[str, Any]:
        return {
            "pool_size": self.db_pool_size,
            "max_overflow": self.db_max_overflow,
            "pool_timeout": self.db_pool_timeout_seconds,
        }

    def policy(self) -> Policy:
        def days(n: float) -> timedelta:
            return timedelta(days=n)

        return Policy(
            applicants_reminder=days(self.applicants_reminder_days),
            posting_expiry=days(self.posting_expiry_days),
            kickoff_reminder=days(self.kickoff_reminder_days),
            kickoff_escalation=days(self.kickoff_escalation_days),
            due_reminder=timedelta(hours=self.due_reminder_hours),
            overdue_escalation=days(self.overdue_escalation_days),
            overdue_cancel=days(self.overdue_cancel_days),
            review_reminder=days(self.review_reminder_days),
            review_auto_approve=days(self.review_auto_approve_days),
            max_revision_rounds=self.max_revision_rounds,
            revision_time=days(self.revision_days),
            max_extension=days(self.max_extension_days),
            payout_reminder=days(self.payout_reminder_days),
            feedback_window=days(self.feedback_window_days),
            launcher_share_percent=self.launcher_share_percent,
            time_scale=self.time_scale,
            dispute_reminder=days(self.dispute_reminder_days),
            dispute_decision=days(self.dispute_decision_days),
            max_open_applications=self.max_open_applications,
        )


@lru_cache
def get_settings() -> Settings:
    return Settings()
