"""`python -m api`: serve the API with uvicorn on API_HOST:API_PORT."""

import uvicorn

from api.app import create_app
from core.settings import get_settings

if __name__ == "__main__":
    settings = get_settings()
    uvicorn.run(
        create_app(settings), host=settings.api_host, port=settings.api_port, log_level="info"
    )
