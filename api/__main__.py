"""`python -m api`: serve the API with uvicorn on API_HOST:API_PORT, in API_WORKERS processes."""

import logging
import os
import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import uvicorn

from core import known_secrets, logs
from core.settings import get_settings

METRICS_DIR = "PROMETHEUS_MULTIPROC_DIR"


@contextmanager
def metrics_dir(workers: int) -> Iterator[None]:
    """Request metrics that add up across the API's processes: with more than one, each writes
    its counts to files in PROMETHEUS_MULTIPROC_DIR (prometheus_client's multiprocess mode,
    chosen before any process imports it) and /metrics sums them. Fresh at each start: a
    given directory is emptied of what a previous run left, and one made here is removed on
    exit. One process and no directory given: plain in-process metrics."""
    given = os.environ.get(METRICS_DIR)
    if given:
        path = Path(given)
        path.mkdir(parents=True, exist_ok=True)
        for stale in path.glob("*.db"):
            stale.unlink()
        yield
        return
    os.environ.pop(METRICS_DIR, None)  # set but empty: not a directory
    if workers <= 1:
        yield
        return
    made = tempfile.mkdtemp(prefix="api-metrics-")
    os.environ[METRICS_DIR] = made  # inherited by every process uvicorn starts
    try:
        yield
    finally:
        shutil.rmtree(made, ignore_errors=True)


if __name__ == "__main__":
    settings = get_settings()
    # Refused here too, not only in each process uvicorn starts (create_app): with API_WORKERS
    # > 1 uvicorn's parent would exit 0 after its children refused. (Loopback only warns, there.)
    if not known_secrets.on_loopback(settings.public_base_url) and known_secrets.unsafe(settings):
        logs.configure("api", settings.log_format)
        try:
            known_secrets.enforce(settings, logging.getLogger("api"))
        except known_secrets.UnsafeSecrets:
            sys.exit(3)
    with metrics_dir(settings.api_workers):
        uvicorn.run(
            "api.app:create_app",
            factory=True,
            host=settings.api_host,
            port=settings.api_port,
            workers=settings.api_workers,
            log_config=logs.dict_config("api", settings.log_format),
        )
