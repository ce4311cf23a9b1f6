"""Create the template's table, queues, bucket, alarms and schedules in moto.

Properties are read from ``template.yaml`` and translated from CloudFormation's shapes to the
service APIs' shapes; nothing is defined here a second time.
"""

from __future__ import annotations

import json
from typing import Any

from mediavault_local.template import ACCOUNT, REGION, Template


def provision(template: Template, session: Any) -> dict[str, dict[str, str]]:
    """Create every supported resource; returns ``{logical id: physical attributes}``."""
    dynamodb = session.client("dynamodb")
    sqs = session.client("sqs")
    s3 = session.client("s3")
    prefix = template.stack_name

    for logical_id in template.of_type("AWS::SQS::Queue"):
        name = f"{prefix}-{logical_id}"
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{name}"
        template.bind(logical_id, Ref=url, Arn=arn, QueueName=name, QueueUrl=url)
    for logical_id, res in template.of_type("AWS::SQS::Queue").items():
        props = template.resolve(res.get("Properties") or {})
        attributes = {
            key: json.dumps(value) if isinstance(value, dict) else str(value)
            for key, value in props.items()
            if key in ("VisibilityTimeout", "MessageRetentionPeriod", "DelaySeconds", "RedrivePolicy",
                       "ReceiveMessageWaitTimeSeconds", "MaximumMessageSize")
        }  # fmt: skip
        if attributes:
            sqs.set_queue_attributes(QueueUrl=template.physical[logical_id]["Ref"], Attributes=attributes)

    for logical_id, res in template.of_type("AWS::DynamoDB::Table").items():
        props = template.resolve(res.get("Properties") or {})
        name = f"{prefix}-{logical_id}"
        kwargs: dict[str, Any] = {
            "TableName": name,
            "KeySchema": props["KeySchema"],
            "AttributeDefinitions": props["AttributeDefinitions"],
            "BillingMode": props.get("BillingMode", "PAY_PER_REQUEST"),
        }
        if props.get("GlobalSecondaryIndexes"):
            kwargs["GlobalSecondaryIndexes"] = props["GlobalSecondaryIndexes"]
        if (props.get("SSESpecification") or {}).get("SSEEnabled"):
            kwargs["SSESpecification"] = {"Enabled": True}
        dynamodb.create_table(**kwargs)
        if (props.get("PointInTimeRecoverySpecification") or {}).get("PointInTimeRecoveryEnabled"):
            dynamodb.update_continuous_backups(
                TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
            )
        ttl = props.get("TimeToLiveSpecification") or {}
        if ttl.get("Enabled"):
            dynamodb.update_time_to_live(
                TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": ttl["AttributeName"]}
            )
        template.bind(logical_id, Ref=name, Arn=f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{name}")

    for logical_id, res in template.of_type("AWS::S3::Bucket").items():
        props = template.resolve(res.get("Properties") or {})
        name = f"{prefix}-{logical_id}".lower()
        s3.create_bucket(Bucket=name)
        if "PublicAccessBlockConfiguration" in props:
            s3.put_public_access_block(
                Bucket=name, PublicAccessBlockConfiguration=props["PublicAccessBlockConfiguration"]
            )
        encryption = props.get("BucketEncryption") or {}
        if encryption.get("ServerSideEncryptionConfiguration"):
            s3.put_bucket_encryption(
                Bucket=name,
                ServerSideEncryptionConfiguration={
                    "Rules": [_encryption_rule(r) for r in encryption["ServerSideEncryptionConfiguration"]]
                },
            )
        rules = (props.get("LifecycleConfiguration") or {}).get("Rules") or []
        if rules:
            s3.put_bucket_lifecycle_configuration(
                Bucket=name, LifecycleConfiguration={"Rules": [_lifecycle_rule(r) for r in rules]}
            )
        template.bind(logical_id, Ref=name, Arn=f"arn:aws:s3:::{name}", DomainName=f"{name}.s3.amazonaws.com")

    for res in template.of_type("AWS::S3::BucketPolicy").values():
        props = template.resolve(res.get("Properties") or {})
        document = dict(props["PolicyDocument"])
        # moto's endpoint is plain HTTP: a TLS-only statement would deny every local request.
        # The template tests check that statement; locally it is left out.
        document["Statement"] = [s for s in document["Statement"] if "aws:SecureTransport" not in json.dumps(s)]
        if document["Statement"]:
            s3.put_bucket_policy(Bucket=props["Bucket"], Policy=json.dumps(document))

    _alarms(template, session.client("cloudwatch"))
    _schedules(template, session.client("events"))
    return dict(template.physical)


def _encryption_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """CloudFormation's ``ServerSideEncryptionByDefault`` is the API's ``ApplyServerSideEncryptionByDefault``."""
    out: dict[str, Any] = {}
    if "ServerSideEncryptionByDefault" in rule:
        out["ApplyServerSideEncryptionByDefault"] = rule["ServerSideEncryptionByDefault"]
    if "BucketKeyEnabled" in rule:
        out["BucketKeyEnabled"] = bool(rule["BucketKeyEnabled"])
    return out


def _lifecycle_rule(rule: dict[str, Any]) -> dict[str, Any]:
    """A CloudFormation lifecycle rule in the S3 API's shape."""
    out: dict[str, Any] = {"Status": rule.get("Status", "Enabled")}
    if "Id" in rule:
        out["ID"] = rule["Id"]
    out["Filter"] = {"Prefix": rule.get("Prefix", "")}
    abort = rule.get("AbortIncompleteMultipartUpload")
    if abort:
        out["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": int(abort["DaysAfterInitiation"])}
    if "ExpirationInDays" in rule:
        out["Expiration"] = {"Days": int(rule["ExpirationInDays"])}
    return out


_ALARM_KEYS = (
    "AlarmName", "AlarmDescription", "MetricName", "Namespace", "Statistic", "Period", "EvaluationPeriods",
    "DatapointsToAlarm", "Threshold", "ComparisonOperator", "TreatMissingData", "Dimensions", "AlarmActions",
    "OKActions", "Unit",
)  # fmt: skip


def _alarms(template: Template, cloudwatch: Any) -> None:
    for logical_id, res in template.of_type("AWS::CloudWatch::Alarm").items():
        props = template.resolve(res.get("Properties") or {})
        kwargs = {k: props[k] for k in _ALARM_KEYS if k in props}
        kwargs.setdefault("AlarmName", f"{template.stack_name}-{logical_id}")
        if "Metrics" in props and "MetricName" not in kwargs:
            continue  # metric-math alarms are not needed locally
        for key in ("Period", "EvaluationPeriods", "DatapointsToAlarm"):
            if key in kwargs:
                kwargs[key] = int(kwargs[key])
        kwargs["Threshold"] = float(kwargs.get("Threshold", 0))
        cloudwatch.put_metric_alarm(**kwargs)


def _schedules(template: Template, events: Any) -> None:
    for logical_id in template.functions():
        for name, event in template.function(logical_id).events.items():
            if event.get("Type") in ("Schedule", "ScheduleV2"):
                props = event.get("Properties") or {}
                expression = props.get("Schedule") or props.get("ScheduleExpression")
                events.put_rule(
                    Name=f"{template.stack_name}-{logical_id}-{name}",
                    ScheduleExpression=str(expression),
                    State="ENABLED" if props.get("Enabled", True) else "DISABLED",
                )
