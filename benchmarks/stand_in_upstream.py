"""A stand-in for an OpenAI-compatible upstream that answers after a fixed delay, using no CPU.

    python benchmarks/stand_in_upstream.py PORT [--delay 0.3]

For `benchmarks/serve.py` only: on a 2-core machine, vLLM on CPU takes the cores
that ponder and the clients need, so what ponder adds in front of it mixes
ponder's own work with the time the kernel lets it wait. Behind this stand-in,
which waits without computing, what ponder adds is its own work. Every
completion is the same four-line arith solution with its usage.
"""

from __future__ import annotations

import argparse
import asyncio

from aiohttp import web

TEXT = "37 + 48 = 85\n85 * 6 = 510\n510 - 25 = 485\nThe answer is 485."
MODEL = "arith-policy"


def app(delay: float) -> web.Application:
    async def models(_: web.Request) -> web.Response:
        listed = [{"id": MODEL, "object": "model", "created": 0, "owned_by": "stand-in"}]
        return web.json_response({"object": "list", "data": listed})

    async def completions(request: web.Request) -> web.Response:
        body = await request.json()
        await asyncio.sleep(delay)
        choice = {"index": 0, "text": TEXT, "logprobs": None, "finish_reason": "stop"}
        return web.json_response(
            {
                "id": "cmpl-stand-in",
                "object": "text_completion",
                "created": 0,
                "model": body.get("model", MODEL),
                "choices": [choice],
                "usage": {"prompt_tokens": 24, "completion_tokens": 31, "total_tokens": 55},
            }
        )

    async def health(_: web.Request) -> web.Response:
        return web.Response(text="ok")

    application = web.Application()
    application.add_routes(
        [
            web.get("/v1/models", models),
            web.post("/v1/completions", completions),
            web.get("/health", health),
        ]
    )
    return application


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("port", type=int)
    parser.add_argument("--delay", type=float, default=0.3, help="seconds before each answer")
    args = parser.parse_args()
    web.run_app(app(args.delay), host="127.0.0.1", port=args.port, print=None)


if __name__ == "__main__":
    main()
