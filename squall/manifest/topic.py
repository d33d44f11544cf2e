"""The `topic` trigger of squall.yaml: `- topic: deploys` subscribes the function to a topic of
`topics:`, as an SNS subscription does, optionally filtering messages with a filter policy."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import BeforeValidator, Field, ValidationInfo

from squall.manifest.errors import Loc, fail, undeclared_message
from squall.manifest.filter_policy import SCOPES
from squall.manifest.resources import (check_filter_policy, check_filter_policy_scope, check_topic_name,
                                       with_parsed_filter_policy)
from squall.manifest.sections import Declared, TriggerAlias, TriggerSection


class TopicTrigger(TriggerSection):
    """`- topic: NAME`: the function is subscribed to a topic of `topics:`."""

    kind: ClassVar[str] = "topic"

    topic: Annotated[str, BeforeValidator(check_topic_name),
                     Field(description="the name of a topic declared under topics")]
    filter_policy: Annotated[dict[str, Any] | None, BeforeValidator(check_filter_policy)] = None
    filter_policy_scope: Annotated[str, BeforeValidator(check_filter_policy_scope)] = SCOPES[0]
    alias: TriggerAlias = None

    @classmethod
    def prepare(cls, data: dict[Any, Any], info: ValidationInfo) -> dict[Any, Any]:
        return with_parsed_filter_policy(data)

    def check_references(self, declared: Declared, here: Loc) -> None:
        """The topic is declared."""
        if self.topic not in declared.topics:
            raise fail(undeclared_message("topic", "topics", self.topic, declared.topics), *here, "topic")
