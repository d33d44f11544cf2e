"""The platform API for asynchronous invocations and dead letters (`/_squall/api/...`).

    POST /functions/{name}/events         202 {"requestId"} once the event is stored;
                                          `Idempotency-Key` header: a repeat within 24 h
                                          answers with the first request's id
    GET  /functions/{name}/events         how many of its events are queued, running, dead
    GET  /events/{id}                     one stored event (queued, running, dead, ...)
    GET  /functions/{name}/dlq            the function's dead letters
    POST /functions/{name}/dlq/redrive    {"ids": [...]} or {} for all: queue them again
    POST /functions/{name}/dlq/purge      {"ids": [...]} or {} for all: delete them
    GET  /topics                          topics and their subscribers
    POST /topics/{name}/publish           {"message", "subject"?, "attributes"?} -> {"messageId"}
    GET  /schedules                       every schedule: last run, its result, next run
    POST /schedules/{name}/run            fire a schedule once, now -> {"requestId"}
    GET  /queues                          queues and their message counts
    POST /queues/{name}/messages          {"body", "attributes"?, "group_id"?,
                                          "deduplication_id"?, "delay"?} -> {"messageId"}
    GET  /buckets                         buckets, their object counts and sizes
    GET  /buckets/{b}/objects             ?prefix=&start_after=&limit= -> {"objects", "next"}
    PUT/GET/DELETE /buckets/{b}/objects/{key}   an object (the body is its content)
    POST /functions/{name}/trigger        {"kind": "schedule"|"topic"|"queue"|"bucket", ...}:
                                          invoke now with that trigger's event
"""

from __future__ import annotations

import base64
import time
from typing import Any, Callable

import orjson
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, Response
from starlette.routing import Route

from squall.events.buckets import MAX_OBJECT_BYTES
from squall.events.engine import MAX_ASYNC_PAYLOAD
from squall.events.local_triggers import trigger_event
from squall.exceptions import BadInput
from squall.server.bodies import MAX_JSON_REQUEST_BYTES, check_declared_length, request_body
from squall.node.core import ActiveFunction, Node
from squall.releases import split_target
from squall.server.responses import event_payload, invocation_response, json_response
from squall.store.events import Event

MAX_IDEMPOTENCY_KEY = 256


def event_info(event: Event, with_payload: bool = False) -> dict[str, Any]:
    info: dict[str, Any] = {
        "id": event.id, "function": event.function, "source": event.source, "status": event.status.value,
        "attempts": event.attempts, "max_attempts": event.max_attempts, "created_at": event.created_at,
        "run_at": event.run_at, "expires_at": event.expires_at, "finished_at": event.finished_at,
        "dead_reason": event.dead_reason.value if event.dead_reason else None, "last_error": event.last_error,
    }
    if with_payload:
        try:
            info["payload"] = orjson.loads(event.payload) if event.payload else None
        except orjson.JSONDecodeError:
            info["payload_base64"] = base64.b64encode(event.payload).decode()
    return info


async def json_object(request: Request) -> dict[str, Any]:
    """The request body, which must be a JSON object (read up to MAX_JSON_REQUEST_BYTES)."""
    try:
        data = orjson.loads(await request_body(request, MAX_JSON_REQUEST_BYTES))
    except orjson.JSONDecodeError as exc:
        raise BadInput(f"the request body is not valid JSON: {exc}") from None
    if not isinstance(data, dict):
        raise BadInput("the request body must be a JSON object")
    return data


async def id_list(request: Request) -> list[str] | None:
    """`ids` of a JSON body such as {"ids": ["..."]}; None (meaning all) when absent."""
    body = await request_body(request, MAX_JSON_REQUEST_BYTES)
    try:
        data = orjson.loads(body) if body else {}
    except orjson.JSONDecodeError as exc:
        raise BadInput(f"the request body is not valid JSON: {exc}") from None
    ids = data.get("ids") if isinstance(data, dict) else None
    if ids is None:
        return None
    if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
        raise BadInput('"ids" must be a list of event ids')
    return ids


async def submit_event(node: Node, name: str, function: ActiveFunction, payload: bytes,
                       idempotency_key: str | None) -> dict[str, str]:
    """Store an asynchronous event for `function` (resolved from `name`: NAME, NAME:ALIAS or
    NAME:7) with its JSON `payload`; the 202 answer's body. Both lanes submit through this."""
    key = idempotency_key or None
    if key is not None and len(key) > MAX_IDEMPOTENCY_KEY:
        raise BadInput(f"the Idempotency-Key header is longer than {MAX_IDEMPOTENCY_KEY} characters")
    request_id = await node.events.invoke_async(function, payload, qualifier=split_target(name)[1],
                                                idempotency_key=key)
    return {"requestId": request_id, "function": name}


class EventsApi:
    def __init__(self, node: Node) -> None:
        self.node = node
        self.engine = node.events

    def routes(self, guard: Callable[[Any], Any]) -> list[Route]:
        return [
            Route("/_squall/api/functions/{name}/events", guard(self.submit), methods=["POST"]),
            Route("/_squall/api/functions/{name}/events", guard(self.counts), methods=["GET"]),
            Route("/_squall/api/events/{id}", guard(self.get_event)),
            Route("/_squall/api/functions/{name}/dlq", guard(self.dead_letters)),
            Route("/_squall/api/functions/{name}/dlq/redrive", guard(self.redrive), methods=["POST"]),
            Route("/_squall/api/functions/{name}/dlq/purge", guard(self.purge), methods=["POST"]),
            Route("/_squall/api/topics", guard(self.list_topics)),
            Route("/_squall/api/topics/{name}/publish", guard(self.publish), methods=["POST"]),
            Route("/_squall/api/schedules", guard(self.list_schedules)),
            Route("/_squall/api/schedules/{name:path}/run", guard(self.run_schedule), methods=["POST"]),
            Route("/_squall/api/queues", guard(self.list_queues)),
            Route("/_squall/api/queues/{name}/messages", guard(self.send_message), methods=["POST"]),
            Route("/_squall/api/functions/{name}/trigger", guard(self.trigger), methods=["POST"]),
            Route("/_squall/api/buckets", guard(self.list_buckets)),
            Route("/_squall/api/buckets/{bucket}/objects", guard(self.list_objects)),
            Route("/_squall/api/buckets/{bucket}/objects/{key:path}", guard(self.object),
                  methods=["GET", "PUT", "DELETE"]),
        ]

    async def trigger(self, request: Request) -> Response:
        """Invoke a function now with the event one of its triggers would deliver."""
        function = self.node.get(request.path_params["name"])
        event = trigger_event(self.node.settings, function, await json_object(request))
        return invocation_response(await self.node.invoke(function, event), event=event)

    async def list_buckets(self, request: Request) -> Response:
        buckets = []
        for name, resource in sorted(self.node.resources.get("bucket", {}).items()):
            count, size = await run_in_threadpool(self.node.store.bucket_usage, name)
            buckets.append({"name": name, "project": resource.project, "objects": count, "bytes": size})
        return json_response({"buckets": buckets})

    async def list_objects(self, request: Request) -> Response:
        query = request.query_params
        try:
            limit = min(max(int(query.get("limit", 1000)), 1), 1000)
        except ValueError:
            raise BadInput("limit must be a whole number") from None
        objects, following = await run_in_threadpool(
            self.engine.buckets.list, request.path_params["bucket"], prefix=query.get("prefix", ""),
            start_after=query.get("start_after", ""), limit=limit)
        return json_response({"bucket": request.path_params["bucket"], "next": following, "objects": [
            {"key": o.key, "size": o.size, "etag": o.etag, "content_type": o.content_type,
             "modified_at": o.modified_at} for o in objects]})

    async def object(self, request: Request) -> Response:
        bucket, key = request.path_params["bucket"], request.path_params["key"]
        buckets = self.engine.buckets
        if request.method == "PUT":
            check_declared_length(request.scope, MAX_OBJECT_BYTES)
            info = await buckets.put(bucket, key, request.stream(),
                                     request.headers.get("content-type", "application/octet-stream"))
            return json_response({"bucket": bucket, "key": key, "size": info.size, "etag": info.etag})
        if request.method == "DELETE":
            await buckets.delete(bucket, key)
            return Response(status_code=204)
        info, path = await run_in_threadpool(buckets.get, bucket, key)
        return FileResponse(path, media_type=info.content_type, headers={"etag": f'"{info.etag}"'})

    async def list_queues(self, request: Request) -> Response:
        queues = []
        now = time.time()
        for name, resource in sorted(self.node.resources.get("queue", {}).items()):
            counts = await run_in_threadpool(self.node.store.queue_counts, name, now=now)
            consumers = sorted(f for f, q in self.engine.queues.consumers if q == name)
            queues.append({"name": name, "project": resource.project, "fifo": bool(resource.config.get("fifo")),
                           "consumers": consumers, **counts})
        return json_response({"queues": queues})

    async def send_message(self, request: Request) -> Response:
        data = await json_object(request)
        body = data.get("body")
        if not isinstance(body, str):
            raise BadInput('send {"body": "...", ...}; body must be a string')
        delay = data.get("delay")
        if delay is not None and (not isinstance(delay, (int, float)) or not 0 <= delay <= 900):
            raise BadInput("delay must be a number of seconds from 0 to 900")
        for key in ("group_id", "deduplication_id"):
            if data.get(key) is not None and not isinstance(data[key], str):
                raise BadInput(f"{key} must be a string")
        message_id = await self.engine.queues.send(request.path_params["name"], body,
                                                   attributes=data.get("attributes"), group_id=data.get("group_id"),
                                                   deduplication_id=data.get("deduplication_id"), delay=delay)
        return json_response({"messageId": message_id, "queue": request.path_params["name"]})

    async def list_topics(self, request: Request) -> Response:
        topics = []
        for name, resource in sorted(self.node.resources.get("topic", {}).items()):
            functions = sorted(f for f, _ in self.engine.topics.function_subscribers(name))
            urls = [s["url"] for s in resource.config.get("subscriptions") or []]
            topics.append({"name": name, "project": resource.project, "functions": functions, "urls": urls})
        return json_response({"topics": topics})

    async def publish(self, request: Request) -> Response:
        data = await json_object(request)
        if not isinstance(data.get("message"), str):
            raise BadInput('send {"message": "...", "subject": "...", "attributes": {...}}; message must be a string')
        subject = data.get("subject")
        if subject is not None and not isinstance(subject, str):
            raise BadInput("subject must be a string")
        message_id = await self.engine.publish(request.path_params["name"], data["message"], subject=subject,
                                               attributes=data.get("attributes"))
        return json_response({"messageId": message_id, "topic": request.path_params["name"]})

    async def list_schedules(self, request: Request) -> Response:
        scheduler = self.engine.scheduler
        await scheduler.refresh()
        return json_response({"schedules": [
            {"key": s.key, "name": s.name, "function": s.function, "expression": s.expression,
             "timezone": s.timezone, "enabled": bool(s.config.get("enabled", True)), "next_fire": s.next_fire,
             "last_fire": s.last_fire, "last_status": s.last_status, "last_request_id": s.last_request_id,
             "last_success": s.last_success, "alarm_raised": s.alarm_raised}
            for s in scheduler.states.values()]})

    async def run_schedule(self, request: Request) -> Response:
        request_id = await self.engine.scheduler.run_now(request.path_params["name"])
        return json_response({"requestId": request_id, "schedule": request.path_params["name"]}, 202)

    async def submit(self, request: Request) -> Response:
        name = request.path_params["name"]  # NAME, NAME:ALIAS or NAME:7
        function = await self.node.resolve(name)
        payload = await event_payload(request, MAX_ASYNC_PAYLOAD)
        return json_response(await submit_event(self.node, name, function, payload,
                                                request.headers.get("idempotency-key")), 202)

    async def counts(self, request: Request) -> Response:
        name = request.path_params["name"]
        self.node.get(name)
        counts = await run_in_threadpool(self.node.store.count_events, name)
        return json_response({"function": name, "events": {status.value: n for status, n in counts.items()},
                              "completed_by_this_node": self.engine.dispatcher.completed})

    async def get_event(self, request: Request) -> Response:
        event = await run_in_threadpool(self.engine.get, request.path_params["id"])
        return json_response(event_info(event, with_payload=True))

    async def dead_letters(self, request: Request) -> Response:
        name = request.path_params["name"]  # a removed function's or `@http`'s dead letters too
        try:
            limit = min(int(request.query_params.get("limit", 100)), 1000)
        except ValueError:
            raise BadInput("limit must be a whole number") from None
        events = await run_in_threadpool(self.engine.dead_letters, name, limit)
        return json_response({"function": name, "events": [event_info(e) for e in events]})

    async def redrive(self, request: Request) -> Response:
        name = request.path_params["name"]
        ids = await id_list(request)
        moved = await run_in_threadpool(self.engine.redrive, name, ids)
        return json_response({"function": name, "redriven": moved})

    async def purge(self, request: Request) -> Response:
        name = request.path_params["name"]
        ids = await id_list(request)
        purged = await run_in_threadpool(self.engine.purge, name, ids)
        return json_response({"function": name, "purged": purged})
