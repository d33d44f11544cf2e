"""Unit tests of squall.events.shapes: the events AWS services hand to Lambda functions.

Each expected dict is the AWS documentation example for that source, field for
field and in the documented order, with our values put in; a missing, extra or
misspelt key, or a number where AWS has a string, fails the comparison.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone
from typing import Any
from urllib.parse import unquote_plus

import orjson
import pytest

from squall.events.shapes import (
    ACCOUNT_ID,
    REGION,
    destination_record,
    epoch_millis,
    function_arn,
    iso_millis,
    iso_seconds,
    md5_of_body,
    md5_of_message_attributes,
    queue_arn,
    queue_url,
    s3_event,
    s3_event_key,
    s3_record,
    scheduled_event,
    sns_http_headers,
    sns_http_notification,
    sns_records,
    sns_unsubscribe_url,
    sqs_event,
    sqs_record,
    topic_arn,
)

AT = datetime(2026, 11, 23, 12, 0, 0, 123456, tzinfo=UTC)
SUBSCRIPTION = "arn:aws:sns:local:000000000000:orders:21be56ed-a058-49f5-8c98-aedd2564c486"
UNSUBSCRIBE = f"http://localhost:8080/?Action=Unsubscribe&SubscriptionArn={SUBSCRIPTION}"


def roundtrip(event: dict[str, Any]) -> Any:
    """What the function receives: the event after JSON encoding."""
    return orjson.loads(orjson.dumps(event))


# ---------------------------------------------------------------- ARNs and formats


def test_arns_use_the_local_region_and_fake_account() -> None:
    assert (REGION, ACCOUNT_ID) == ("local", "000000000000")
    assert function_arn("fn") == "arn:aws:lambda:local:000000000000:function:fn"
    assert function_arn("fn", "$LATEST") == "arn:aws:lambda:local:000000000000:function:fn:$LATEST"
    assert topic_arn("orders") == "arn:aws:sns:local:000000000000:orders"
    assert queue_arn("jobs.fifo", region="eu-west-1", account="123456789012") == \
        "arn:aws:sqs:eu-west-1:123456789012:jobs.fifo"
    assert queue_url("jobs", "http://localhost:8080/") == "http://localhost:8080/000000000000/jobs"
    assert sns_unsubscribe_url("http://localhost:8080/", SUBSCRIPTION) == UNSUBSCRIBE


def test_timestamp_formats() -> None:
    assert iso_seconds(AT) == "2026-11-23T12:00:00Z"
    assert iso_millis(AT) == "2026-11-23T12:00:00.123Z"
    assert iso_millis(AT.replace(microsecond=0)) == "2026-11-23T12:00:00.000Z"
    east = AT.astimezone(timezone(timedelta(hours=9)))
    assert (iso_seconds(east), iso_millis(east)) == ("2026-11-23T12:00:00Z", "2026-11-23T12:00:00.123Z")
    assert iso_millis(AT.replace(tzinfo=None)) == "2026-11-23T12:00:00.123Z"  # naive is UTC
    assert epoch_millis(datetime(2018, 12, 17, 21, 37, 29, 183000, tzinfo=UTC)) == 1545082649183


# ---------------------------------------------------------------- EventBridge


def test_scheduled_event_matches_the_documented_example() -> None:
    expected = {
        "version": "0",
        "account": "000000000000",
        "region": "local",
        "detail": {},
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "time": "2026-11-23T12:00:00Z",
        "id": "cdc73f9d-aea9-11e3-9d5a-835b769c0d9c",
        "resources": ["arn:aws:events:local:000000000000:rule/my-schedule"],
    }
    event = scheduled_event("cdc73f9d-aea9-11e3-9d5a-835b769c0d9c", "my-schedule", AT)
    assert roundtrip(event) == expected


# ---------------------------------------------------------------- SNS


def test_sns_lambda_event_matches_the_documented_example() -> None:
    expected = {"Records": [{
        "EventVersion": "1.0",
        "EventSubscriptionArn": SUBSCRIPTION,
        "EventSource": "aws:sns",
        "Sns": {
            "SignatureVersion": "1",
            "Timestamp": "2026-11-23T12:00:00.123Z",
            "Signature": "tcc6faL2yUC6dgZdmrwh1Y4cGa/ebXEkAi6RibDsvpi+tE/1+82j...65r==",
            "SigningCertUrl": "http://localhost:8080/SimpleNotificationService-local.pem",
            "MessageId": "95df01b4-ee98-5cb9-9903-4c221d41eb5e",
            "Message": "Hello from SNS!",
            "MessageAttributes": {
                "Test": {"Type": "String", "Value": "TestString"},
                "TestBinary": {"Type": "Binary", "Value": "TestBinary"},
            },
            "Type": "Notification",
            "UnsubscribeUrl": UNSUBSCRIBE,
            "TopicArn": "arn:aws:sns:local:000000000000:orders",
            "Subject": "TestInvoke",
        },
    }]}
    event = sns_records(
        "95df01b4-ee98-5cb9-9903-4c221d41eb5e", "orders", "TestInvoke", "Hello from SNS!",
        {"Test": {"Type": "String", "Value": "TestString"},
         "TestBinary": {"Type": "Binary", "Value": "TestBinary"}},
        AT, SUBSCRIPTION, unsubscribe_url=UNSUBSCRIBE,
        signature="tcc6faL2yUC6dgZdmrwh1Y4cGa/ebXEkAi6RibDsvpi+tE/1+82j...65r==",
        signing_cert_url="http://localhost:8080/SimpleNotificationService-local.pem")
    assert roundtrip(event) == expected


def test_sns_lambda_event_without_subject_or_attributes() -> None:
    event = roundtrip(sns_records("m-1", "orders", None, "{}", {}, AT, SUBSCRIPTION,
                                  unsubscribe_url=UNSUBSCRIBE))
    sns = event["Records"][0]["Sns"]
    assert sns["Subject"] is None  # JSON null, as in real deliveries
    assert sns["MessageAttributes"] == {}
    assert sns["Message"] == "{}"


def test_sns_http_notification_matches_the_documented_example() -> None:
    expected = {
        "Type": "Notification",
        "MessageId": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
        "TopicArn": "arn:aws:sns:local:000000000000:MyTopic",
        "Subject": "My First Message",
        "Message": "Hello world!",
        "Timestamp": "2026-11-23T12:00:00.123Z",
        "SignatureVersion": "1",
        "Signature": "EXAMPLEw6JRNwm1LFQL4ICB0bnXrdB8ClRMTQFGBqwLpGbM78tJ4etTwC5zU7O3tS6tGpey3ejedNdOJ+1fk",
        "SigningCertURL": "http://localhost:8080/SimpleNotificationService-local.pem",
        "UnsubscribeURL": UNSUBSCRIBE,
    }
    body = sns_http_notification(
        "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324", "MyTopic", "My First Message", "Hello world!", {}, AT,
        unsubscribe_url=UNSUBSCRIBE,
        signature="EXAMPLEw6JRNwm1LFQL4ICB0bnXrdB8ClRMTQFGBqwLpGbM78tJ4etTwC5zU7O3tS6tGpey3ejedNdOJ+1fk",
        signing_cert_url="http://localhost:8080/SimpleNotificationService-local.pem")
    assert roundtrip(body) == expected
    assert list(body) == list(expected)  # the documented key order


def test_sns_http_notification_leaves_out_missing_subject_and_carries_attributes() -> None:
    body = sns_http_notification("m-1", "orders", None, "hi", {"k": {"Type": "Number", "Value": "7"}}, AT,
                                 unsubscribe_url=UNSUBSCRIBE)
    assert "Subject" not in body
    assert body["MessageAttributes"] == {"k": {"Type": "Number", "Value": "7"}}
    assert "SigningCertUrl" not in body and "UnsubscribeUrl" not in body


def test_sns_http_headers_match_the_documented_example() -> None:
    expected = {
        "x-amz-sns-message-type": "Notification",
        "x-amz-sns-message-id": "22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324",
        "x-amz-sns-topic-arn": "arn:aws:sns:local:000000000000:MyTopic",
        "x-amz-sns-subscription-arn": "arn:aws:sns:local:000000000000:MyTopic:c9135db0-26c4-47ec-8998",
        "Content-Type": "text/plain; charset=UTF-8",
        "User-Agent": "Amazon Simple Notification Service Agent",
    }
    assert sns_http_headers("22b80b92-fdea-4c2c-8f9d-bdfb0c7bf324", "MyTopic",
                            "arn:aws:sns:local:000000000000:MyTopic:c9135db0-26c4-47ec-8998") == expected


# ---------------------------------------------------------------- SQS


def test_sqs_event_matches_the_documented_standard_queue_example() -> None:
    expected = {"Records": [{
        "messageId": "059f36b4-87a3-44ab-83d2-661975830a7d",
        "receiptHandle": "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a...",
        "body": "Test message.",
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": "1545082649183",
            "SenderId": "AIDAIENQZJOLO23YVJ4VO",
            "ApproximateFirstReceiveTimestamp": "1545082649185",
        },
        "messageAttributes": {},
        "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:local:000000000000:my-queue",
        "awsRegion": "local",
    }]}
    record = sqs_record("059f36b4-87a3-44ab-83d2-661975830a7d", "AQEBwJnKyrHigUMZj6rYigCgxlaS3SLy0a...",
                        "Test message.", queue="my-queue", receive_count=1,
                        sent_timestamp=1545082649183, first_receive_timestamp=1545082649185,
                        sender_id="AIDAIENQZJOLO23YVJ4VO")
    event = sqs_event([record])
    assert roundtrip(event) == expected
    assert list(record["attributes"]) == list(expected["Records"][0]["attributes"])


def test_sqs_event_matches_the_documented_fifo_example() -> None:
    expected = {
        "messageId": "11d6ee51-4cc7-4302-9e22-7cd8afdaadf5",
        "receiptHandle": "AQEBBX8nesZEXmkhsmZeyIE8iQAMig7qw...",
        "body": "Test message.",
        "attributes": {
            "ApproximateReceiveCount": "1",
            "SentTimestamp": "1573251510774",
            "SequenceNumber": "18849496460467696128",
            "MessageGroupId": "1",
            "SenderId": "AIDAIO23YVJENQZJOL4VO",
            "MessageDeduplicationId": "1",
            "ApproximateFirstReceiveTimestamp": "1573251510774",
        },
        "messageAttributes": {},
        "md5OfBody": "e4e68fb7bd0e697a0ae8f1bb342846b3",
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:local:000000000000:fifo.fifo",
        "awsRegion": "local",
    }
    record = sqs_record("11d6ee51-4cc7-4302-9e22-7cd8afdaadf5", "AQEBBX8nesZEXmkhsmZeyIE8iQAMig7qw...",
                        "Test message.", queue="fifo.fifo", receive_count=1,
                        sent_timestamp=1573251510774, first_receive_timestamp=1573251510774,
                        sender_id="AIDAIO23YVJENQZJOL4VO", sequence_number="18849496460467696128",
                        message_group_id="1", message_deduplication_id="1")
    assert roundtrip(record) == expected
    assert list(record["attributes"]) == list(expected["attributes"])  # documented order


def test_sqs_message_attributes_use_the_lower_camel_lambda_shape() -> None:
    attributes = {"myAttribute": {"DataType": "String", "StringValue": "myValue"},
                  "blob": {"DataType": "Binary", "BinaryValue": "AQI="}}
    record = roundtrip(sqs_record("m", "r", "Test message.", queue="q", receive_count=2,
                                  sent_timestamp=1, first_receive_timestamp=2, sender_id="s",
                                  message_attributes=attributes))
    assert record["messageAttributes"] == {
        "myAttribute": {"stringValue": "myValue", "stringListValues": [], "binaryListValues": [],
                        "dataType": "String"},
        "blob": {"binaryValue": "AQI=", "stringListValues": [], "binaryListValues": [],
                 "dataType": "Binary"},
    }
    assert record["md5OfMessageAttributes"] == md5_of_message_attributes(attributes)
    assert record["attributes"]["ApproximateReceiveCount"] == "2"


def test_md5_of_body_is_the_real_digest() -> None:
    assert md5_of_body("test") == "098f6bcd4621d373cade4e832627b4f6"  # AWS's own example
    assert md5_of_body("héllo") == hashlib.md5("héllo".encode()).hexdigest()
    record = sqs_record("m", "r", "anything else", queue="q", receive_count=1, sent_timestamp=1,
                        first_receive_timestamp=1, sender_id="s")
    assert record["md5OfBody"] == hashlib.md5(b"anything else").hexdigest()
    assert "md5OfMessageAttributes" not in record  # absent without attributes


def test_md5_of_message_attributes_matches_sqs() -> None:
    # MD5OfMessageAttributes of a ReceiveMessage response carrying these two attributes.
    assert md5_of_message_attributes({
        "Foo": {"DataType": "String", "StringValue": "Bar"},
        "Count": {"DataType": "Number", "StringValue": "1"},
    }) == "324758f82d026ac6ec5b31a3b192d1e3"
    # Binary values are hashed decoded, with transport byte 2 (the documented layout, by hand).
    layout = (b"\x00\x00\x00\x01b" + b"\x00\x00\x00\x06Binary" + b"\x02" + b"\x00\x00\x00\x02\x01\x02")
    assert md5_of_message_attributes({"b": {"DataType": "Binary", "BinaryValue": "AQI="}}) == \
        hashlib.md5(layout).hexdigest()


# ---------------------------------------------------------------- S3


def test_s3_put_matches_the_documented_example() -> None:
    expected = {"Records": [{
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "local",
        "eventTime": "2026-11-23T12:00:00.123Z",
        "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "AIDAJDPLRKLG7UEXAMPLE"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {
            "x-amz-request-id": "C3D13FE58DE4C810",
            "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD",
        },
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "testConfigRule",
            "bucket": {
                "name": "mybucket",
                "ownerIdentity": {"principalId": "AIDAJDPLRKLG7UEXAMPLE"},
                "arn": "arn:aws:s3:::mybucket",
            },
            "object": {
                "key": "HappyFace.jpg",
                "size": 1024,
                "eTag": "d41d8cd98f00b204e9800998ecf8427e",
                "versionId": "096fKKXTRTtl3on89fVO.nfljtsv6qko",
                "sequencer": "0055AED6DCD90281E5",
            },
        },
    }]}
    record = s3_record("ObjectCreated:Put", "mybucket", "HappyFace.jpg", 1024,
                       "d41d8cd98f00b204e9800998ecf8427e", "0055AED6DCD90281E5", AT, "C3D13FE58DE4C810",
                       version_id="096fKKXTRTtl3on89fVO.nfljtsv6qko", configuration_id="testConfigRule",
                       principal_id="AIDAJDPLRKLG7UEXAMPLE",
                       host_id="FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD")
    assert roundtrip(s3_event([record])) == expected
    assert isinstance(record["s3"]["object"]["size"], int)  # a number, not a string


def test_s3_object_removed_has_no_size_or_etag() -> None:
    record = s3_record("ObjectRemoved:Delete", "mybucket", "HappyFace.jpg", None, None,
                       "0055AED6DCD90281E6", AT, "C3D13FE58DE4C811")
    assert record["s3"]["object"] == {"key": "HappyFace.jpg", "sequencer": "0055AED6DCD90281E6"}
    assert record["eventName"] == "ObjectRemoved:Delete"


def test_s3_object_created_needs_size_and_etag() -> None:
    with pytest.raises(ValueError, match="size and eTag"):
        s3_record("ObjectCreated:Put", "b", "k", None, None, "00", AT, "r")


@pytest.mark.parametrize(("key", "encoded"), [
    ("my file+x.txt", "my+file%2Bx.txt"),
    ("red flower.jpg", "red+flower.jpg"),  # the S3 documentation's example
    ("photos/2026/a b.jpg", "photos/2026/a+b.jpg"),
    ("dt=2018-05-04/_SUCCESS", "dt%3D2018-05-04/_SUCCESS"),
    ("日本.txt", "%E6%97%A5%E6%9C%AC.txt"),
])
def test_s3_keys_are_url_encoded_as_s3_does(key: str, encoded: str) -> None:
    assert s3_event_key(key) == encoded
    assert unquote_plus(encoded) == key
    record = s3_record("ObjectCreated:Put", "b", key, 1, "e", "00", AT, "r")
    assert record["s3"]["object"]["key"] == encoded


# ---------------------------------------------------------------- Lambda destinations


def test_destination_record_matches_the_documented_failure_example() -> None:
    expected = {
        "version": "1.0",
        "timestamp": "2026-11-23T12:00:00.123Z",
        "requestContext": {
            "requestId": "e4b46cbf-b738-xmpl-8880-a18cdf61200e",
            "functionArn": "arn:aws:lambda:local:000000000000:function:my-function:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": 3,
        },
        "requestPayload": {"ORDER_IDS": ["9e07af03-ce31-4ff3-xmpl-36dce652cb4f"]},
        "responseContext": {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            "functionError": "Unhandled",
        },
        "responsePayload": {
            "errorMessage": "RequestId: e4b46cbf-b738-xmpl-8880-a18cdf61200e Process exited before completing request",
        },
    }
    record = destination_record(
        "e4b46cbf-b738-xmpl-8880-a18cdf61200e", "my-function", None, "RetriesExhausted", 3,
        {"ORDER_IDS": ["9e07af03-ce31-4ff3-xmpl-36dce652cb4f"]},
        {"errorMessage": "RequestId: e4b46cbf-b738-xmpl-8880-a18cdf61200e Process exited before completing request"},
        200, "Unhandled", AT)
    assert roundtrip(record) == expected


def test_destination_record_on_success_has_no_function_error() -> None:
    record = roundtrip(destination_record("c2a6f2ae", "event-destinations", "prod", "Success", 1,
                                          {"Success": True}, None, 200, None, AT))
    assert record["requestContext"] == {
        "requestId": "c2a6f2ae",
        "functionArn": "arn:aws:lambda:local:000000000000:function:event-destinations:prod",
        "condition": "Success",
        "approximateInvokeCount": 1,
    }
    assert record["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST"}
    assert "responsePayload" in record and record["responsePayload"] is None


def test_destination_record_for_an_event_that_aged_out_unattempted() -> None:
    record = destination_record("r", "fn", None, "EventAgeExceeded", 0, {"a": 1}, None, None, None, AT)
    assert record["requestContext"]["approximateInvokeCount"] == 0
    assert "responseContext" not in record and "responsePayload" not in record


def test_destination_record_rejects_unknown_conditions() -> None:
    with pytest.raises(ValueError, match="condition"):
        destination_record("r", "fn", None, "Failure", 1, {}, None, 200, None, AT)  # type: ignore[arg-type]
