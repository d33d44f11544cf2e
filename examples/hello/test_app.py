"""Tests of app.handler: called directly with the event and context squall hands it, then
through a real squall node running this project, as `squall dev` runs it.

squall.testing is squall's pytest plugin: `http_event` and `lambda_context` are built by the
platform's own converters, and the fixture `squall` is this folder's project deployed on a
node of its own for the test (see docs/testing.md: schedules on a clock you move, topics,
queues, buckets, logs, tables). Run them with `python -m pytest`.
"""

from __future__ import annotations

import json

import pytest

from squall.testing import Project, http_event, lambda_context

import app


def test_get_greets_the_name_in_the_query_string() -> None:
    response = app.handler(http_event("GET", "/hello", query={"name": "you"}), lambda_context("hello"))
    assert response["statusCode"] == 200
    assert json.loads(response["body"]) == {"message": "hello, you"}


def test_post_greets_the_name_in_the_json_body() -> None:
    response = app.handler(http_event("POST", "/hello", json={"name": "squall"}), lambda_context("hello"))
    assert json.loads(response["body"]) == {"message": "hello, squall"}


def test_greets_the_world_without_a_name() -> None:
    response = app.handler(http_event("GET", "/hello"), lambda_context("hello"))
    assert json.loads(response["body"]) == {"message": "hello, world"}


@pytest.mark.e2e  # this repository's second tier (the scaffold's copy has no marks)
def test_the_route_answers_on_a_squall_node(squall: Project) -> None:
    response = squall.get("/hello", params={"name": "you"})
    assert response.status_code == 200
    assert response.json() == {"message": "hello, you"}
    assert "saying hello to you" in squall.log_text("hello")
