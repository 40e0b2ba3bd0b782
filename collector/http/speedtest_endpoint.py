"""A Speedtest Mini-compatible endpoint on the collector, so line-probe agents can measure the
commune's line to the province server over the government WAN, not only to the internet.

speedtest-cli expects, under a base URL: the base itself answering 200 (the Mini's index, which
may name the upload extension), ``speedtest/latency.txt`` answering ``test=test``,
``speedtest/random{N}x{N}.jpg`` streaming bytes, and ``speedtest/upload.php`` answering
``size=<bytes received>`` to a POST and then closing the connection (the client reads 11 bytes
and waits otherwise). ``rate_mbps`` throttles all transfers together, like a line of that speed.
An upload is answered with what arrived once its body goes quiet, and only so many run at once
(``collector/http/uploads.py``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request, Response
from fastapi.responses import PlainTextResponse, StreamingResponse
from starlette.requests import ClientDisconnect

from collector.http.body_limits import SPEEDTEST_UPLOAD_MAX, stated
from collector.http.contract import Problem
from collector.http.deps import MetricsDep, ThrottleDep, UploadsDep

log = logging.getLogger("commune_collector.speedtest")

router = APIRouter()

CHUNK = 64 * 1024
MAX_SIDE = 4000
PATTERN = bytes(range(256)) * (CHUNK // 256)


@router.get("/", response_class=PlainTextResponse)
def index() -> str:
    """The Mini's index page: says which upload extension to use."""
    return 'commune-collector speed-test endpoint\nupload_extension: "php"\n'


@router.get("/speedtest/latency.txt", response_class=PlainTextResponse)
def latency() -> str:
    return "test=test\n"


@router.get(
    "/speedtest/random{side:int}x{side2:int}.jpg",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"image/jpeg": {"schema": {"type": "string", "format": "binary"}}}, "description": "Bytes."},
        404: {"model": Problem, "description": "Sides differ."},
    },
)
async def download(
    side: Annotated[int, Path(ge=1, le=MAX_SIDE)], side2: Annotated[int, Path(ge=1, le=MAX_SIDE)], throttle: ThrottleDep
) -> StreamingResponse:
    if side != side2 or not 1 <= side <= MAX_SIDE:
        raise HTTPException(404, f"no random{side}x{side2}.jpg; sides are equal and at most {MAX_SIDE}")
    size = 2 * side * side  # about the size of the Mini's real random images

    async def body() -> AsyncIterator[bytes]:
        left = size
        while left > 0:
            piece = PATTERN[: min(CHUNK, left)]
            await throttle.take(len(piece))
            yield piece
            left -= len(piece)

    return StreamingResponse(body(), media_type="image/jpeg", headers={"Content-Length": str(size)})


@router.get("/speedtest/upload.php", response_class=PlainTextResponse)
def upload_probe() -> str:
    return "size=0"


@router.post(
    "/speedtest/upload.php",
    response_class=PlainTextResponse,
    responses={503: {"description": "Every upload slot is taken ([speedtest] max_concurrent_uploads)."}},
    openapi_extra=stated(SPEEDTEST_UPLOAD_MAX),
)
async def upload(request: Request, throttle: ThrottleDep, uploads: UploadsDep, metrics: MetricsDep) -> Response:
    if not uploads.enter():
        metrics.speedtest_uploads_refused.inc()
        log.warning("speed-test upload refused: every slot taken", extra={"max_concurrent": uploads.max_concurrent})
        return PlainTextResponse("size=0", status_code=503, headers={"Connection": "close", "Retry-After": "5"})
    try:
        received, complete = await read_body(request, uploads.idle_s)
    finally:
        uploads.leave()
    if not complete:
        metrics.speedtest_uploads_short.inc()
        declared = request.headers.get("content-length", "")
        log.info(
            "speed-test upload went quiet; answered with what arrived",
            extra={"received": received, "declared": declared[:20]},
        )
    # Throttle by holding the answer, not by reading slowly: uvicorn stops reading a socket whose
    # body the app reads slowly, and speedtest-cli times the upload until the answer anyway.
    await throttle.take(received)
    return PlainTextResponse(f"size={received}", headers={"Connection": "close"})


async def read_body(request: Request, idle_s: float) -> tuple[int, bool]:
    """Bytes of the body received, and whether it ended; stops once nothing arrives for ``idle_s``
    (a body sent short of its declared length) or the client goes away."""
    received = 0
    pieces = request.stream().__aiter__()
    while True:
        try:
            piece = await asyncio.wait_for(pieces.__anext__(), idle_s)
        except StopAsyncIteration:
            return received, True
        except (TimeoutError, ClientDisconnect):
            return received, False
        received += len(piece)
