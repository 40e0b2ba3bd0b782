"""A Speedtest Mini-compatible endpoint on the collector, so line-probe agents can measure the
commune's line to the province server over the government WAN, not only to the internet.

speedtest-cli expects, under a base URL: the base itself answering 200 (the Mini's index, which
may name the upload extension), ``speedtest/latency.txt`` answering ``test=test``,
``speedtest/random{N}x{N}.jpg`` streaming bytes, and ``speedtest/upload.php`` answering
``size=<bytes received>`` to a POST and then closing the connection (the client reads 11 bytes
and waits otherwise). ``rate_mbps`` throttles all transfers together, like a line of that speed.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path, Request, Response
from fastapi.responses import PlainTextResponse, StreamingResponse

from collector.http.contract import Problem
from collector.http.deps import ThrottleDep

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


@router.post("/speedtest/upload.php", response_class=PlainTextResponse)
async def upload(request: Request, throttle: ThrottleDep) -> Response:
    received = 0
    async for piece in request.stream():
        received += len(piece)
    # Throttle by holding the answer, not by reading slowly: uvicorn stops reading a socket whose
    # body the app reads slowly, and speedtest-cli times the upload until the answer anyway.
    await throttle.take(received)
    return PlainTextResponse(f"size={received}", headers={"Connection": "close"})
