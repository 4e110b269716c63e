"""`python -m api`: serve the API with uvicorn on API_HOST:API_PORT, in API_WORKERS processes."""

import uvicorn

from core import logs
from core.settings import get_settings

if __name__ == "__main__":
    settings = get_settings()
    uvicorn.run(
        "api.app:create_app",
        factory=True,
        host=settings.api_host,
        port=settings.api_port,
        workers=settings.api_workers,
        log_config=logs.dict_config("api", settings.log_format),
    )
