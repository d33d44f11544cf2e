"""squall.yaml: the project manifest, its models and its loader (see squall.manifest.project)."""

from squall.manifest.project import (
    MANIFEST_NAME,
    AuthType,
    BucketSpec,
    BucketTrigger,
    Destination,
    FunctionSpec,
    HttpTrigger,
    Manifest,
    QueueSpec,
    QueueTrigger,
    RouteAuth,
    ScheduleTrigger,
    Subscription,
    TopicSpec,
    TopicTrigger,
    Trigger,
    default_project_name,
    load_manifest,
    parse_manifest,
)

__all__ = ["MANIFEST_NAME", "AuthType", "RouteAuth", "HttpTrigger", "ScheduleTrigger", "TopicTrigger",
           "QueueTrigger", "BucketTrigger", "Trigger", "Destination", "TopicSpec", "Subscription",
           "QueueSpec", "BucketSpec", "FunctionSpec", "Manifest", "load_manifest", "parse_manifest",
           "default_project_name"]
