"""`python -m api`: serve the API with uvicorn on API_HOST:API_PORT, in API_WORKERS processes."""

import logging
import sys

import uvicorn

from core import known_secrets, logs
from core.settings import get_settings

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
    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=settings.api_host,
        port=settings.api_port,
        workers=settings.api_workers,
        log_config=logs.dict_config("api", settings.log_format),
    )
