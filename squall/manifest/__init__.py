"""squall.yaml, the manifest of a project: its models, their checks and the loader.

Modules import only modules listed before them here (tests/test_manifest_layers.py holds this),
and nothing of squall's packages above the manifest:

    errors                  where a problem is (Loc, dotted), how values are quoted, fail()
    yaml_lines              the YAML read with the line of every key and list item
    values                  the one copy of each shared value check: numbers, durations, names, env
    sections                the base models: Section, TriggerSection; Declared (what a project declares)
    filter_policy, cron_fields, schedule_expressions
                            pure parsers of SNS filter policies and schedule expressions
    resources               topics:, queues:, buckets:; resource names; filter policy fields
    tables, stages, grants, destinations
                            tables:, stages:, a function's grants and its async destinations
    http, schedule, topic, queue, bucket
                            one module per trigger kind
    triggers                the union of the trigger kinds (the one place that lists them)
    functions               a function: FunctionSpec
    project                 the whole manifest: Manifest, load_manifest, parse_manifest

The user reference is docs/manifest.md; docs/internals.md says how to add a trigger kind.
"""

from squall.manifest.bucket import BucketTrigger
from squall.manifest.destinations import Destination
from squall.manifest.functions import FunctionSpec
from squall.manifest.http import AuthType, HttpTrigger, RouteAuth
from squall.manifest.project import (MANIFEST_NAME, Manifest, default_project_name, load_manifest,
                                     parse_manifest)
from squall.manifest.queue import QueueTrigger
from squall.manifest.resources import BucketSpec, QueueSpec, Subscription, TopicSpec
from squall.manifest.schedule import ScheduleTrigger
from squall.manifest.stages import StageSpec
from squall.manifest.tables import TableSpec
from squall.manifest.topic import TopicTrigger
from squall.manifest.triggers import Trigger

__all__ = ["MANIFEST_NAME", "AuthType", "RouteAuth", "HttpTrigger", "ScheduleTrigger", "TopicTrigger",
           "QueueTrigger", "BucketTrigger", "Trigger", "Destination", "TopicSpec", "Subscription",
           "QueueSpec", "BucketSpec", "StageSpec", "TableSpec", "FunctionSpec", "Manifest", "load_manifest",
           "parse_manifest", "default_project_name"]
