"""A small web app over feedring with AsyncFeedClient and aiohttp: the shape of an app server.

    .venv/bin/python examples/timeline_app.py --feedring 127.0.0.1:7100 --port 8080
    curl -X POST localhost:8080/users/alice/follow/bob
    curl -X POST localhost:8080/users/bob/posts -d 'hello world'
    curl localhost:8080/users/alice/timeline?limit=20

One AsyncFeedClient for the whole app (it keeps its channels and the routing map), made when the app
starts and closed when it stops. feedring's errors map onto HTTP statuses; nothing here blocks the
event loop. tests/integration/test_async_client.py runs this app against a real cluster.
"""

from __future__ import annotations

import argparse
from collections.abc import AsyncIterator, Awaitable, Callable

from aiohttp import web

from client import AsyncFeedClient, FeedringError, InvalidArgument, NotFound, Unavailable

FEED = web.AppKey("feed", AsyncFeedClient)
HTTP_STATUS = {InvalidArgument: 400, NotFound: 404, Unavailable: 503}


def make_app(feedring_address: str) -> web.Application:
    app = web.Application(middlewares=[errors_as_http])
    app.cleanup_ctx.append(feed_client(feedring_address))
    app.add_routes(
        [
            web.post("/users/{user}/follow/{followee}", follow),
            web.post("/users/{user}/posts", post),
            web.get("/users/{user}/timeline", timeline),
        ]
    )
    return app


def feed_client(address: str) -> Callable[[web.Application], AsyncIterator[None]]:
    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        async with AsyncFeedClient(address) as feed:
            app[FEED] = feed
            yield

    return lifetime


@web.middleware
async def errors_as_http(
    request: web.Request, handler: Callable[[web.Request], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    try:
        return await handler(request)
    except FeedringError as exc:
        status = next((s for cls, s in HTTP_STATUS.items() if isinstance(exc, cls)), 500)
        return web.json_response({"error": str(exc)}, status=status)


async def follow(request: web.Request) -> web.Response:
    created = await request.app[FEED].follow(request.match_info["user"], request.match_info["followee"])
    return web.json_response({"created": created})


async def post(request: web.Request) -> web.Response:
    posted = await request.app[FEED].post(request.match_info["user"], await request.text())
    return web.json_response({"id": str(posted.id)}, status=201)


async def timeline(request: web.Request) -> web.Response:
    limit = request.query.get("limit", "20")
    if not limit.isdigit() or not 1 <= int(limit) <= 1000:
        raise web.HTTPBadRequest(text="limit must be a number from 1 to 1000")
    feed = request.app[FEED]
    posts = []
    async for p in feed.iter_timeline(request.match_info["user"], page_size=min(int(limit), 100)):
        posts.append({"id": str(p.id), "author": p.author, "text": p.text, "created_at_ms": p.created_at_ms})
        if len(posts) == int(limit):
            break  # the pages after this one are never fetched
    return web.json_response({"posts": posts})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--feedring", default="127.0.0.1:7100", help="a router's or node's address")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    web.run_app(make_app(args.feedring), port=args.port)


if __name__ == "__main__":
    main()
