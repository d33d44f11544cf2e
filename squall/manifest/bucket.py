"""The `bucket` trigger of squall.yaml: `- bucket: uploads` invokes the function when objects of
a bucket of `buckets:` are created or removed, as an S3 event notification does. Event types are
stored without S3's `s3:` prefix."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import BeforeValidator, Field

from squall.manifest.errors import Loc, did_you_mean, fail, show, undeclared_message
from squall.manifest.resources import check_bucket_name
from squall.manifest.sections import Declared, TriggerAlias, TriggerSection
from squall.manifest.values import check_text

BUCKET_EVENTS = ("ObjectCreated:*", "ObjectCreated:Put", "ObjectCreated:Copy", "ObjectRemoved:*",
                 "ObjectRemoved:Delete")
DEFAULT_BUCKET_EVENTS = ("ObjectCreated:*",)


def _check_events(value: Any) -> list[str]:
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        raise ValueError(f"must be a list of S3 event types such as [ObjectCreated:*], got {show(value)}")
    events: list[str] = []
    for index, item in enumerate(items):
        event = item.removeprefix("s3:") if isinstance(item, str) else item
        if event not in BUCKET_EVENTS:
            raise fail(f"must be one of {', '.join(BUCKET_EVENTS)} (with or without s3:), got "
                       f"{show(item)}{did_you_mean(event, BUCKET_EVENTS)}",
                       *((index,) if isinstance(value, list) else ()))
        if event not in events:
            events.append(event)
    return events


class BucketTrigger(TriggerSection):
    """`- bucket: NAME`: object changes in a bucket of `buckets:` invoke the function."""

    kind: ClassVar[str] = "bucket"

    bucket: Annotated[str, BeforeValidator(check_bucket_name),
                      Field(description="the name of a bucket declared under buckets")]
    events: Annotated[list[str], BeforeValidator(_check_events)] = Field(
        default_factory=lambda: list(DEFAULT_BUCKET_EVENTS))
    prefix: Annotated[str, BeforeValidator(check_text)] = ""
    suffix: Annotated[str, BeforeValidator(check_text)] = ""
    alias: TriggerAlias = None

    def check_references(self, declared: Declared, here: Loc) -> None:
        """The bucket is declared."""
        if self.bucket not in declared.buckets:
            raise fail(undeclared_message("bucket", "buckets", self.bucket, declared.buckets),
                       *here, "bucket")
