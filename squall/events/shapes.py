"""The events AWS services deliver to Lambda functions, shaped exactly as AWS shapes them.

One builder per source: EventBridge schedules, SNS (the Lambda event and the
HTTP/S POST), SQS, S3 notifications and the record Lambda sends to an
asynchronous invocation's destination. Field names, nesting, value types
(numbers vs strings) and timestamp formats follow the AWS documentation
examples; optional keys are left out exactly when AWS leaves them out.

Everything is pure: ids, receipt handles and times are parameters, so tests
are deterministic. ARNs use a fake but well-formed scheme, region `local`
and account `000000000000` unless told otherwise.
"""

from __future__ import annotations

import base64
import hashlib
import struct
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from urllib.parse import quote_plus

REGION = "local"
"""The region in every ARN and `awsRegion`/`region` field unless told otherwise."""
ACCOUNT_ID = "000000000000"
"""The account id in every ARN and `account` field unless told otherwise."""

SNS_USER_AGENT = "Amazon Simple Notification Service Agent"
SNS_CONTENT_TYPE = "text/plain; charset=UTF-8"
"""What SNS sends as Content-Type with an HTTP/S notification (the body is JSON all the same)."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

DestinationCondition = Literal["Success", "RetriesExhausted", "EventAgeExceeded"]
_CONDITIONS = frozenset({"Success", "RetriesExhausted", "EventAgeExceeded"})

# ---------------------------------------------------------------- ARNs and URLs


def function_arn(name: str, qualifier: str | None = None, *, region: str = REGION,
                 account: str = ACCOUNT_ID) -> str:
    """`arn:aws:lambda:local:000000000000:function:NAME[:QUALIFIER]`."""
    arn = f"arn:aws:lambda:{region}:{account}:function:{name}"
    return f"{arn}:{qualifier}" if qualifier else arn


def topic_arn(name: str, *, region: str = REGION, account: str = ACCOUNT_ID) -> str:
    """`arn:aws:sns:local:000000000000:TOPIC`."""
    return f"arn:aws:sns:{region}:{account}:{name}"


def queue_arn(name: str, *, region: str = REGION, account: str = ACCOUNT_ID) -> str:
    """`arn:aws:sqs:local:000000000000:QUEUE`."""
    return f"arn:aws:sqs:{region}:{account}:{name}"


def queue_url(name: str, base_url: str, *, account: str = ACCOUNT_ID) -> str:
    """`BASE/000000000000/QUEUE`, the path layout of `https://sqs.REGION.amazonaws.com/ACCOUNT/QUEUE`."""
    return f"{base_url.rstrip('/')}/{account}/{name}"


def rule_arn(name: str, *, region: str = REGION, account: str = ACCOUNT_ID) -> str:
    """`arn:aws:events:local:000000000000:rule/NAME`."""
    return f"arn:aws:events:{region}:{account}:rule/{name}"


def bucket_arn(name: str) -> str:
    """`arn:aws:s3:::BUCKET` (S3 ARNs carry no region or account)."""
    return f"arn:aws:s3:::{name}"


def sns_unsubscribe_url(base_url: str, subscription_arn: str) -> str:
    """`BASE/?Action=Unsubscribe&SubscriptionArn=ARN`, the ARN unescaped as SNS writes it."""
    return f"{base_url.rstrip('/')}/?Action=Unsubscribe&SubscriptionArn={subscription_arn}"


# ---------------------------------------------------------------- formats


def _utc(moment: datetime) -> datetime:
    """A naive datetime is taken to be UTC."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def iso_seconds(moment: datetime) -> str:
    """`2026-11-23T12:00:00Z` (EventBridge `time`)."""
    return _utc(moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_millis(moment: datetime) -> str:
    """`2026-11-23T12:00:00.123Z` (SNS `Timestamp`, S3 `eventTime`, destination `timestamp`)."""
    utc = _utc(moment)
    return f"{utc.strftime('%Y-%m-%dT%H:%M:%S')}.{utc.microsecond // 1000:03d}Z"


def epoch_millis(moment: datetime) -> int:
    """Milliseconds since the epoch (SQS `SentTimestamp` and friends, before stringifying)."""
    return (_utc(moment) - _EPOCH) // timedelta(milliseconds=1)


def s3_event_key(key: str) -> str:
    """An object key as S3 notifications carry it: form-encoded, `/` kept.

    `my file+x.txt` becomes `my+file%2Bx.txt`; `unquote_plus` restores it.
    """
    return quote_plus(key, safe="/")


# ---------------------------------------------------------------- EventBridge


def scheduled_event(event_id: str, rule_name: str, time: datetime, *, region: str = REGION,
                    account: str = ACCOUNT_ID) -> dict[str, Any]:
    """The EventBridge "Scheduled Event" a schedule rule delivers to its target."""
    return {
        "version": "0",
        "id": event_id,
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account,
        "time": iso_seconds(time),
        "region": region,
        "resources": [rule_arn(rule_name, region=region, account=account)],
        "detail": {},
    }


# ---------------------------------------------------------------- SNS


def _sns_attributes(attributes: Mapping[str, Mapping[str, str]]) -> dict[str, dict[str, str]]:
    return {name: {"Type": value["Type"], "Value": value["Value"]}
            for name, value in attributes.items()}


def sns_records(message_id: str, topic: str, subject: str | None, message: str,
                attributes: Mapping[str, Mapping[str, str]], timestamp: datetime,
                subscription_arn: str, *, unsubscribe_url: str, signature: str = "",
                signing_cert_url: str = "", region: str = REGION,
                account: str = ACCOUNT_ID) -> dict[str, Any]:
    """The `{"Records": [...]}` event SNS invokes a subscribed function with.

    `attributes` are `{name: {"Type": ..., "Value": ...}}`. A publish without a
    subject has `"Subject": null`. Squall does not sign messages, so
    `Signature` and `SigningCertUrl` are whatever the caller passes.
    """
    return {"Records": [{
        "EventSource": "aws:sns",
        "EventVersion": "1.0",
        "EventSubscriptionArn": subscription_arn,
        "Sns": {
            "Type": "Notification",
            "MessageId": message_id,
            "TopicArn": topic_arn(topic, region=region, account=account),
            "Subject": subject,
            "Message": message,
            "Timestamp": iso_millis(timestamp),
            "SignatureVersion": "1",
            "Signature": signature,
            "SigningCertUrl": signing_cert_url,
            "UnsubscribeUrl": unsubscribe_url,
            "MessageAttributes": _sns_attributes(attributes),
        },
    }]}


def sns_http_notification(message_id: str, topic: str, subject: str | None, message: str,
                          attributes: Mapping[str, Mapping[str, str]], timestamp: datetime, *,
                          unsubscribe_url: str, signature: str = "", signing_cert_url: str = "",
                          region: str = REGION, account: str = ACCOUNT_ID) -> dict[str, Any]:
    """The JSON body SNS POSTs to an HTTP/S subscriber for a notification.

    Unlike the Lambda event, the URL keys end in `URL`, `Subject` is left out
    when the publish had none, and `MessageAttributes` only appears when the
    message has attributes.
    """
    body: dict[str, Any] = {
        "Type": "Notification",
        "MessageId": message_id,
        "TopicArn": topic_arn(topic, region=region, account=account),
    }
    if subject is not None:
        body["Subject"] = subject
    body.update({
        "Message": message,
        "Timestamp": iso_millis(timestamp),
        "SignatureVersion": "1",
        "Signature": signature,
        "SigningCertURL": signing_cert_url,
        "UnsubscribeURL": unsubscribe_url,
    })
    if attributes:
        body["MessageAttributes"] = _sns_attributes(attributes)
    return body


def sns_http_headers(message_id: str, topic: str, subscription_arn: str, *,
                     message_type: str = "Notification", region: str = REGION,
                     account: str = ACCOUNT_ID) -> dict[str, str]:
    """The SNS-specific headers of the POST (Host, Content-Length etc. are the transport's)."""
    return {
        "x-amz-sns-message-type": message_type,
        "x-amz-sns-message-id": message_id,
        "x-amz-sns-topic-arn": topic_arn(topic, region=region, account=account),
        "x-amz-sns-subscription-arn": subscription_arn,
        "Content-Type": SNS_CONTENT_TYPE,
        "User-Agent": SNS_USER_AGENT,
    }


# ---------------------------------------------------------------- SQS


def md5_of_body(body: str) -> str:
    """`md5OfBody`: the hex MD5 of the body's UTF-8 bytes."""
    return hashlib.md5(body.encode("utf-8")).hexdigest()


def _attribute_bytes(value: Mapping[str, str]) -> tuple[bytes, bytes]:
    """(transport type, value bytes) of an API-shaped attribute value."""
    if value["DataType"].startswith("Binary"):
        return b"\x02", base64.b64decode(value["BinaryValue"])
    return b"\x01", value["StringValue"].encode("utf-8")


def md5_of_message_attributes(attributes: Mapping[str, Mapping[str, str]]) -> str:
    """SQS's `MD5OfMessageAttributes`, by the documented algorithm.

    `attributes` are SendMessage-shaped: `{name: {"DataType", "StringValue"
    | "BinaryValue" (base64)}}`. Names are sorted; each contributes its
    length-prefixed name and data type, a transport byte (1 string/number,
    2 binary) and the length-prefixed value.
    """
    def field(raw: bytes) -> bytes:
        return struct.pack(">I", len(raw)) + raw

    digest = hashlib.md5()
    for name in sorted(attributes):
        value = attributes[name]
        transport, raw = _attribute_bytes(value)
        digest.update(field(name.encode("utf-8")) + field(value["DataType"].encode("utf-8"))
                      + transport + field(raw))
    return digest.hexdigest()


def _sqs_attribute(value: Mapping[str, str]) -> dict[str, Any]:
    """A SendMessage-shaped attribute value in the Lambda event's lower-camel shape."""
    shaped: dict[str, Any] = {}
    if value["DataType"].startswith("Binary"):
        shaped["binaryValue"] = value["BinaryValue"]
    else:
        shaped["stringValue"] = value["StringValue"]
    shaped.update({"stringListValues": [], "binaryListValues": [], "dataType": value["DataType"]})
    return shaped


def sqs_record(message_id: str, receipt_handle: str, body: str, *, queue: str,
               receive_count: int, sent_timestamp: int, first_receive_timestamp: int,
               sender_id: str, message_attributes: Mapping[str, Mapping[str, str]] | None = None,
               sequence_number: str | None = None, message_group_id: str | None = None,
               message_deduplication_id: str | None = None, region: str = REGION,
               account: str = ACCOUNT_ID) -> dict[str, Any]:
    """One record of the event Lambda's SQS poller invokes a function with.

    Timestamps are epoch milliseconds; every system attribute is a string, as
    in AWS. The FIFO attributes appear only when given. `message_attributes`
    are SendMessage-shaped (see `md5_of_message_attributes`); when there are
    any, `md5OfMessageAttributes` is added.
    """
    attributes = {"ApproximateReceiveCount": str(receive_count), "SentTimestamp": str(sent_timestamp)}
    if sequence_number is not None:
        attributes["SequenceNumber"] = sequence_number
    if message_group_id is not None:
        attributes["MessageGroupId"] = message_group_id
    attributes["SenderId"] = sender_id
    if message_deduplication_id is not None:
        attributes["MessageDeduplicationId"] = message_deduplication_id
    attributes["ApproximateFirstReceiveTimestamp"] = str(first_receive_timestamp)
    message_attributes = message_attributes or {}
    record: dict[str, Any] = {
        "messageId": message_id,
        "receiptHandle": receipt_handle,
        "body": body,
        "attributes": attributes,
        "messageAttributes": {name: _sqs_attribute(value)
                              for name, value in message_attributes.items()},
        "md5OfBody": md5_of_body(body),
    }
    if message_attributes:
        record["md5OfMessageAttributes"] = md5_of_message_attributes(message_attributes)
    record.update({
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn(queue, region=region, account=account),
        "awsRegion": region,
    })
    return record


def sqs_event(records: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """`{"Records": [...]}` around `sqs_record` results (one batch)."""
    return {"Records": [dict(record) for record in records]}


# ---------------------------------------------------------------- S3


def s3_record(event_name: str, bucket: str, key: str, size: int | None, etag: str | None,
              sequencer: str, event_time: datetime, request_id: str, *,
              version_id: str | None = None, configuration_id: str = "squall",
              principal_id: str = ACCOUNT_ID, source_ip: str = "127.0.0.1",
              host_id: str = "squall", region: str = REGION) -> dict[str, Any]:
    """One S3 event notification record (event version 2.1).

    `event_name` has no `s3:` prefix (`ObjectCreated:Put`, `ObjectRemoved:Delete`).
    `size` (a number) and `eTag` appear only for ObjectCreated events, and
    `versionId` only for versioned buckets. The key is URL-encoded as S3 does.
    """
    obj: dict[str, Any] = {"key": s3_event_key(key)}
    if event_name.startswith("ObjectCreated:"):
        if size is None or etag is None:
            raise ValueError(f"{event_name} needs the object's size and eTag")
        obj["size"] = size
        obj["eTag"] = etag
    if version_id is not None:
        obj["versionId"] = version_id
    obj["sequencer"] = sequencer
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": region,
        "eventTime": iso_millis(event_time),
        "eventName": event_name,
        "userIdentity": {"principalId": principal_id},
        "requestParameters": {"sourceIPAddress": source_ip},
        "responseElements": {"x-amz-request-id": request_id, "x-amz-id-2": host_id},
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": configuration_id,
            "bucket": {
                "name": bucket,
                "ownerIdentity": {"principalId": principal_id},
                "arn": bucket_arn(bucket),
            },
            "object": obj,
        },
    }


def s3_event(records: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """`{"Records": [...]}` around `s3_record` results."""
    return {"Records": [dict(record) for record in records]}


# ---------------------------------------------------------------- Lambda destinations


def destination_record(request_id: str, function_name: str, qualifier: str | None,
                       condition: DestinationCondition, approximate_invoke_count: int,
                       request_payload: Any, response_payload: Any, status_code: int | None,
                       function_error: str | None, timestamp: datetime, *,
                       executed_version: str = "$LATEST", region: str = REGION,
                       account: str = ACCOUNT_ID) -> dict[str, Any]:
    """The invocation record Lambda sends to an asynchronous invocation's destination.

    `functionArn` ends in the qualifier invoked (`$LATEST` when none).
    `functionError` (`Handled`/`Unhandled`) appears only for failed attempts.
    With `status_code` None (the event aged out before any attempt) there is
    no `responseContext` and no `responsePayload`.
    """
    if condition not in _CONDITIONS:
        raise ValueError(f"unknown destination condition {condition!r}")
    record: dict[str, Any] = {
        "version": "1.0",
        "timestamp": iso_millis(timestamp),
        "requestContext": {
            "requestId": request_id,
            "functionArn": function_arn(function_name, qualifier or "$LATEST",
                                        region=region, account=account),
            "condition": condition,
            "approximateInvokeCount": approximate_invoke_count,
        },
        "requestPayload": request_payload,
    }
    if status_code is not None:
        context: dict[str, Any] = {"statusCode": status_code, "executedVersion": executed_version}
        if function_error is not None:
            context["functionError"] = function_error
        record["responseContext"] = context
        record["responsePayload"] = response_payload
    return record
