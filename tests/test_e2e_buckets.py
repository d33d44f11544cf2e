"""Buckets end to end: `squall bucket put|get|ls|rm`, streaming content to disk, S3 event
notifications filtered by event, prefix and suffix."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from tests.support import RECORDER_CLIENT, Recorder, serving, wait_until

pytestmark = pytest.mark.e2e



def project(recorder: Recorder) -> dict[str, str]:
    return {
        "squall.yaml": f"""
            name: audit
            buckets:
              uploads: {{}}
            functions:
              scan:
                handler: app.scan
                env: {{RECORDER: "{recorder.url}"}}
                triggers:
                  - bucket: uploads
                    prefix: logs/
                    suffix: .gz
                  - bucket: uploads
                    events: [ObjectRemoved:*]
        """,
        "app.py": RECORDER_CLIENT + "\n\ndef scan(event, context):\n    post(event['Records'][0])\n",
    }


def test_objects_round_trip_and_list_in_pages(tmp_path: Path) -> None:
    content = bytes(range(256)) * 4096  # 1 MiB, not UTF-8
    source = tmp_path / "big.bin"
    source.write_bytes(content)
    with Recorder() as recorder, serving(tmp_path, project(recorder)) as node:
        stored = json.loads(node.cli("bucket", "put", "uploads", "data/big.bin", str(source), "--json",
                                     check=True).stdout)
        out = tmp_path / "back.bin"
        node.cli("bucket", "get", "uploads", "data/big.bin", "-o", str(out), check=True)
        for n in range(5):
            node.cli("bucket", "put", "uploads", f"notes/{n}.txt", "-", input=f"note {n}", check=True)
        with node.api() as api:
            first = api.get("/_squall/api/buckets/uploads/objects", params={"prefix": "notes/", "limit": 2}).json()
            second = api.get("/_squall/api/buckets/uploads/objects",
                             params={"prefix": "notes/", "limit": 2, "start_after": first["next"]}).json()
        listed = json.loads(node.cli("bucket", "ls", "uploads", "--prefix", "notes/", "--json", check=True).stdout)
        buckets = json.loads(node.cli("bucket", "ls", "--json", check=True).stdout)

        assert stored["size"] == len(content) and stored["etag"] == hashlib.md5(content).hexdigest()
        assert out.read_bytes() == content
        assert [o["key"] for o in first["objects"]] == ["notes/0.txt", "notes/1.txt"]
        assert [o["key"] for o in second["objects"]] == ["notes/2.txt", "notes/3.txt"]
        assert [o["key"] for o in listed] == [f"notes/{n}.txt" for n in range(5)]
        assert listed[0]["content_type"] == "text/plain"
        assert buckets == [{"name": "uploads", "project": "audit", "objects": 6, "bytes": len(content) + 30}]


def test_changes_notify_matching_triggers_with_s3_records(tmp_path: Path) -> None:
    with Recorder() as recorder, serving(tmp_path, project(recorder)) as node:
        node.cli("bucket", "put", "uploads", "logs/2026 11/app.gz", "-", input="zipped", check=True)
        node.cli("bucket", "put", "uploads", "logs/app.txt", "-", input="plain", check=True)  # wrong suffix
        node.cli("bucket", "rm", "uploads", "logs/app.txt", check=True)

        wait_until(lambda: len(recorder.json()) == 2, timeout=15)
        records = {r["eventName"]: r for r in recorder.json()}
        created = records["ObjectCreated:Put"]
        assert created["eventSource"] == "aws:s3" and created["s3"]["bucket"]["name"] == "uploads"
        assert created["s3"]["object"]["key"] == "logs/2026+11/app.gz" and created["s3"]["object"]["size"] == 6
        assert records["ObjectRemoved:Delete"]["s3"]["object"]["key"] == "logs/app.txt"
        files = list((tmp_path / "data" / "buckets" / "uploads").iterdir())
        assert len(files) == 1  # the removed object's file is gone


def test_bad_bucket_requests_are_refused(tmp_path: Path) -> None:
    with Recorder() as recorder, serving(tmp_path, project(recorder)) as node:
        missing_bucket = node.cli("bucket", "put", "nope", "k", "-", input="x")
        missing_key = node.cli("bucket", "get", "uploads", "nothing-here")
        with node.api() as api:
            too_long = api.put(f"/_squall/api/buckets/uploads/objects/{'k' * 1100}", content=b"x")

        assert missing_bucket.returncode == 1 and "bucket does not exist: nope" in missing_bucket.stderr
        assert missing_key.returncode == 1 and "key does not exist" in missing_key.stderr
        assert too_long.status_code == 400
        assert json.loads(node.cli("bucket", "ls", "uploads", "--json").stdout) == []
        assert recorder.bodies == []
