"""Stored images (avatars, logos) served by their random key: the right Content-Type,
`nosniff`, cached for good (a replaced image gets a new key), and nothing of who uploaded it
(no filename, no account id: the key is all there is)."""

from __future__ import annotations

from fastapi import APIRouter, Path
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from api.deps import FilesDep
from api.errors import not_found
from core.files import KEY
from core.images import content_type

router = APIRouter(include_in_schema=False)

# A key names one image forever: browsers and proxies may keep it.
CACHE = "public, max-age=31536000, immutable"


@router.get("/images/{key}")
async def image(files: FilesDep, key: str = Path(pattern=KEY.pattern)) -> Response:
    media = content_type(key)
    data = await run_in_threadpool(files.get, key) if media else None
    if data is None or media is None:
        raise not_found("image")
    return Response(
        data,
        media_type=media,
        headers={"Cache-Control": CACHE, "X-Content-Type-Options": "nosniff"},
    )
