"""Calls between nodes over Redis: ask one node to do something and wait for its answer.

What must happen where a room's media is (starting its recording: the recorder joins
its own node) is asked of that node: the request is published on the node's channel
`tiaojie:calls:<id>` with a reply key; the node runs the named handler and pushes the
answer there, which the caller waits for (BLPOP). A refusal travels as the same
TiaojieError; a node that is not listening, or does not answer in time, is
`node_unavailable` (503).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
from collections.abc import Awaitable, Callable
from typing import Any

import redis.asyncio as redis

from tiaojie.server.errors import TiaojieError

log = logging.getLogger(__name__)

CallHandler = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]

#: How long a caller waits for the answer (a recorder's start takes a few seconds).
CALL_TIMEOUT_S = 20
#: How long an answer nobody took stays in Redis.
REPLY_TTL_S = 60


def channel(node_id: str) -> str:
    return f"tiaojie:calls:{node_id}"


def unavailable(why: str) -> TiaojieError:
    return TiaojieError("node_unavailable", f"The room's server cannot be reached: {why}.", 503)


class NodeCalls:
    def __init__(self, client: redis.Redis, node_id: str) -> None:
        self.redis = client
        self.node_id = node_id
        self._handlers: dict[str, CallHandler] = {}
        self._listening: asyncio.Task[None] | None = None
        self._tasks: set[asyncio.Task[None]] = set()

    def handle(self, name: str, handler: CallHandler) -> None:
        self._handlers[name] = handler

    async def call(self, node_id: str, name: str, payload: dict[str, Any]) -> dict[str, Any]:
        reply = f"tiaojie:reply:{secrets.token_hex(12)}"
        request = json.dumps({"name": name, "payload": payload, "reply": reply})
        if not await self.redis.publish(channel(node_id), request):
            raise unavailable("it is not listening")
        answer = await self.redis.blpop([reply], timeout=CALL_TIMEOUT_S)
        if answer is None:
            raise unavailable("no answer in time")
        data = json.loads(answer[1])
        if "error" in data:
            raise TiaojieError(data["error"], data["message"], int(data.get("status", 400)))
        return dict(data["result"])

    async def start(self) -> None:
        pubsub = self.redis.pubsub()
        await pubsub.subscribe(channel(self.node_id))
        self._listening = asyncio.ensure_future(self._listen(pubsub))

    async def stop(self) -> None:
        tasks = [t for t in (self._listening, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=5)

    async def _listen(self, pubsub: Any) -> None:
        try:
            async for message in pubsub.listen():
                if message.get("type") != "message":
                    continue
                task = asyncio.ensure_future(self._answer(json.loads(message["data"])))
                self._tasks.add(task)
                task.add_done_callback(self._tasks.discard)
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()

    async def _answer(self, request: dict[str, Any]) -> None:
        handler = self._handlers.get(str(request.get("name")))
        try:
            if handler is None:
                raise TiaojieError("unknown_call", f"No call named {request.get('name')!r}.", 500)
            answer: dict[str, Any] = {"result": await handler(request.get("payload") or {})}
        except TiaojieError as error:
            answer = {**error.to_dict(), "status": error.status}
        except Exception:
            log.exception("call %r from another node failed", request.get("name"))
            failed = TiaojieError("internal_error", "The room's server failed.", 500)
            answer = {**failed.to_dict(), "status": 500}
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.rpush(request["reply"], json.dumps(answer))
            pipe.expire(request["reply"], REPLY_TTL_S)
            await pipe.execute()
