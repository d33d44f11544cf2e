"""A stand-in for a Trello-like tracker: boards, their lists, cards and comments, as JSON over HTTP.

The ci-cards functions talk to it over real HTTP, exactly as they would to a hosted tracker. Run it
alone with `python tracker.py --port 9000 --token dev-token` (it creates the board "CI"), or import
`Tracker`: `start()`, `url`, `stop()`, the in-memory state in `boards`, `lists`, `cards` and
`comments`, and `requests`, the (method, path) of every authorized request in arrival order.
Standard library only.

Every request needs `Authorization: Bearer <token>` (401 otherwise). The API:

    GET  /boards
    GET  /boards/{id}/lists
    GET  /lists/{id}/cards         (the cards of the list that are not archived, with their
                                    created_at and moved_at: ISO-8601 UTC times)
    POST /cards {"list_id", "title", "description"}
    GET  /cards/{id}               PUT  /cards/{id} {"title", "description", "list_id", "archived"}
    GET  /cards/{id}/comments      POST /cards/{id}/comments {"text"}

Archiving is `PUT /cards/{id}` with `{"archived": true}`; moving is the same with a `list_id`.
"""

from __future__ import annotations

import argparse
import itertools
import json
import re
import threading
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

DEFAULT_LISTS = ("to do", "doing", "done")
CARD_FIELDS = {"title": str, "description": str, "list_id": str, "archived": bool}
ROUTES = [
    ("GET", r"/boards", "get_boards"),
    ("GET", r"/boards/(\w+)/lists", "get_lists"),
    ("GET", r"/lists/(\w+)/cards", "get_cards"),
    ("POST", r"/cards", "post_card"),
    ("GET", r"/cards/(\w+)", "get_card"),
    ("PUT", r"/cards/(\w+)", "put_card"),
    ("GET", r"/cards/(\w+)/comments", "get_comments"),
    ("POST", r"/cards/(\w+)/comments", "post_comment"),
]

Reply = tuple[int, Any]


def now() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


@dataclass
class Board:
    id: str
    name: str


@dataclass
class BoardList:
    id: str
    board_id: str
    name: str


@dataclass
class Card:
    id: str
    list_id: str
    title: str
    description: str
    created_at: str
    moved_at: str
    archived: bool = False


@dataclass
class Comment:
    id: str
    card_id: str
    text: str
    created_at: str


class ApiError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def required_text(body: dict[str, Any], key: str) -> str:
    value = body.get(key)
    if not isinstance(value, str) or not value:
        raise ApiError(400, f'"{key}" must be a non-empty string')
    return value


def parse_body(raw_body: bytes) -> dict[str, Any]:
    try:
        body = json.loads(raw_body) if raw_body else {}
    except ValueError:
        raise ApiError(400, "the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ApiError(400, "the body must be a JSON object")
    return body


class Tracker:
    """The tracker's state and API, served on `host:port` (0: a free port) once started."""

    def __init__(self, token: str = "dev-token", host: str = "127.0.0.1", port: int = 0) -> None:
        self.token = token
        self.boards: dict[str, Board] = {}
        self.lists: dict[str, BoardList] = {}
        self.cards: dict[str, Card] = {}
        self.comments: list[Comment] = []
        self.requests: list[tuple[str, str]] = []
        self._counters = {prefix: itertools.count(1) for prefix in "blcm"}
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer((host, port), request_handler(self))
        self._server.daemon_threads = True
        self.url = f"http://{host}:{self._server.server_port}"

    def start(self) -> Tracker:
        # stop() waits for the serving loop to notice: poll often so that it returns at once
        serving = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)
        serving.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._counters[prefix])}"

    def add_board(self, name: str) -> Board:
        board = Board(self.new_id("b"), name)
        self.boards[board.id] = board
        for list_name in DEFAULT_LISTS:
            self.add_list(board.id, list_name)
        return board

    def add_list(self, board_id: str, name: str) -> BoardList:
        board_list = BoardList(self.new_id("l"), self.find(self.boards, board_id).id, name)
        self.lists[board_list.id] = board_list
        return board_list

    def list_named(self, board_name: str, list_name: str) -> BoardList:
        return next(item for item in self.lists.values()
                    if item.name == list_name and self.boards[item.board_id].name == board_name)

    def comments_on(self, card_id: str) -> list[Comment]:
        return [comment for comment in self.comments if comment.card_id == card_id]

    @staticmethod
    def find(items: dict[str, Any], item_id: str) -> Any:
        if item_id not in items:
            raise ApiError(404, f"no such id: {item_id}")
        return items[item_id]

    def handle(self, method: str, target: str, authorization: str, raw_body: bytes) -> Reply:
        """Answer one request: (status, JSON-able body)."""
        if authorization != f"Bearer {self.token}":
            return 401, {"error": "send Authorization: Bearer <token>"}
        path = urlsplit(target).path.rstrip("/")
        self.requests.append((method, path))
        matches = [(verb, name, found) for verb, pattern, name in ROUTES
                   if (found := re.fullmatch(pattern, path))]
        if not matches:
            return 404, {"error": f"no such resource: {path}"}
        chosen = [(name, found) for verb, name, found in matches if verb == method]
        if not chosen:
            return 405, {"error": f"{method} is not allowed on {path}"}
        name, found = chosen[0]
        try:
            body = parse_body(raw_body)
            with self._lock:
                reply: Reply = getattr(self, name)(body, *found.groups())
            return reply
        except ApiError as exc:
            return exc.status, {"error": str(exc)}

    def get_boards(self, body: dict[str, Any]) -> Reply:
        return 200, [asdict(board) for board in self.boards.values()]

    def get_lists(self, body: dict[str, Any], board_id: str) -> Reply:
        self.find(self.boards, board_id)
        return 200, [asdict(item) for item in self.lists.values() if item.board_id == board_id]

    def get_cards(self, body: dict[str, Any], list_id: str) -> Reply:
        self.find(self.lists, list_id)
        return 200, [asdict(card) for card in self.cards.values()
                     if card.list_id == list_id and not card.archived]

    def post_card(self, body: dict[str, Any]) -> Reply:
        list_id = self.find(self.lists, required_text(body, "list_id")).id
        created = now()
        description = body.get("description", "")
        if not isinstance(description, str):
            raise ApiError(400, '"description" must be a string')
        card = Card(self.new_id("c"), list_id, required_text(body, "title"), description, created, created)
        self.cards[card.id] = card
        return 201, asdict(card)

    def get_card(self, body: dict[str, Any], card_id: str) -> Reply:
        return 200, asdict(self.find(self.cards, card_id))

    def put_card(self, body: dict[str, Any], card_id: str) -> Reply:
        card = self.find(self.cards, card_id)
        for key, value in body.items():
            if key not in CARD_FIELDS:
                raise ApiError(400, f'cannot set "{key}": a card has {", ".join(CARD_FIELDS)}')
            if not isinstance(value, CARD_FIELDS[key]):
                raise ApiError(400, f'"{key}" must be a {CARD_FIELDS[key].__name__}')
        if body.get("list_id", card.list_id) != card.list_id:
            self.find(self.lists, body["list_id"])
            card.moved_at = now()
        for key, value in body.items():
            setattr(card, key, value)
        return 200, asdict(card)

    def get_comments(self, body: dict[str, Any], card_id: str) -> Reply:
        self.find(self.cards, card_id)
        return 200, [asdict(comment) for comment in self.comments_on(card_id)]

    def post_comment(self, body: dict[str, Any], card_id: str) -> Reply:
        self.find(self.cards, card_id)
        comment = Comment(self.new_id("m"), card_id, required_text(body, "text"), now())
        self.comments.append(comment)
        return 201, asdict(comment)


def request_handler(tracker: Tracker) -> type[BaseHTTPRequestHandler]:
    class TrackerRequestHandler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            raw_body = self.rfile.read(int(self.headers.get("content-length") or 0))
            status, payload = tracker.handle(self.command, self.path,
                                             self.headers.get("authorization", ""), raw_body)
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        do_POST = do_PUT = do_GET

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return TrackerRequestHandler


def main() -> None:
    parser = argparse.ArgumentParser(description="A stand-in Trello-like tracker with the board CI.")
    parser.add_argument("--port", type=int, default=9000)
    parser.add_argument("--token", default="dev-token", help="the bearer token requests must send")
    args = parser.parse_args()
    tracker = Tracker(token=args.token, port=args.port)
    board = tracker.add_board("CI")
    lists = ", ".join(f"{item.name!r} {item.id}" for item in tracker.lists.values())
    print(f"tracker on {tracker.url}, token {args.token!r}; board {board.name!r} {board.id}: {lists}")
    tracker.start()
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        tracker.stop()


if __name__ == "__main__":
    main()
