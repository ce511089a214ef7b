"""A real (moto) SNS topic with an SQS queue subscribed: what a notification test reads back."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest


@contextmanager
def sns_inbox(monkeypatch: pytest.MonkeyPatch, topic_name: str) -> Iterator[Callable[[], Any]]:
    """Inside it, RECONCILER_SNS_TOPIC_ARN names a fresh topic; the yielded function returns
    the first message published to it (the SNS envelope, as JSON)."""
    import boto3
    from moto import mock_aws

    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        sns = boto3.client("sns", region_name="eu-west-1")
        topic = sns.create_topic(Name=topic_name)["TopicArn"]
        sqs = boto3.client("sqs", region_name="eu-west-1")
        queue = sqs.create_queue(QueueName="inbox")["QueueUrl"]
        queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])[
            "Attributes"
        ]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)
        monkeypatch.setenv("RECONCILER_SNS_TOPIC_ARN", topic)

        def first_message() -> Any:
            received = sqs.receive_message(QueueUrl=queue)["Messages"]
            return json.loads(received[0]["Body"])

        yield first_message
