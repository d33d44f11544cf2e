"""The baseline: a bare uvicorn + Starlette hello app, served the way squall serves (httptools, uvloop)."""

from __future__ import annotations

import sys

import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route


async def hello(request: object) -> JSONResponse:
    return JSONResponse({"message": "hello"})


app = Starlette(routes=[Route("/hello", hello)])

if __name__ == "__main__":
    uvicorn.run(app, host="127.0.0.1", port=int(sys.argv[1]), loop="uvloop", http="httptools",
                log_level="warning", access_log=False)
