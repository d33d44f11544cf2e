"""The `queue` trigger of squall.yaml: `- queue: jobs` makes the function the consumer of a queue
of `queues:`, invoked with batches of messages, as an SQS event source mapping does. A queue
feeds one trigger of the project at most."""

from __future__ import annotations

from typing import Annotated, ClassVar

from pydantic import BeforeValidator, Field, model_validator

from squall.manifest.errors import Loc, dotted, fail, show, undeclared_message
from squall.manifest.resources import MAX_FIFO_BATCH, check_queue_name, is_fifo
from squall.manifest.sections import Declared, TriggerAlias, TriggerSection
from squall.manifest.values import check_bool, duration, whole_number


class QueueTrigger(TriggerSection):
    """`- queue: NAME`: the function consumes a queue of `queues:` in batches."""

    kind: ClassVar[str] = "queue"

    queue: Annotated[str, BeforeValidator(check_queue_name),
                     Field(description="the name of a queue declared under queues")]
    batch_size: Annotated[int, BeforeValidator(whole_number(1, 10000, "messages"))] = 10
    batch_window: Annotated[int | float, BeforeValidator(duration(0, 300))] = 0
    report_batch_item_failures: Annotated[bool, BeforeValidator(check_bool)] = True
    enabled: Annotated[bool, BeforeValidator(check_bool)] = True
    alias: TriggerAlias = None

    @model_validator(mode="after")
    def _check_fifo_batch(self) -> QueueTrigger:
        if is_fifo(self.queue) and self.batch_size > MAX_FIFO_BATCH:
            raise fail(f"must be at most {MAX_FIFO_BATCH} for a FIFO queue (as in SQS), got "
                       f"{self.batch_size}", "batch_size")
        return self

    def check_references(self, declared: Declared, here: Loc) -> None:
        """The queue is declared, and no other trigger consumes it."""
        if self.queue not in declared.queues:
            raise fail(undeclared_message("queue", "queues", self.queue, declared.queues), *here, "queue")
        first = declared.claim("queue consumer", self.queue, (*here, "queue"))
        if first != (*here, "queue"):
            raise fail(f"queue {show(self.queue)} is already consumed by function {show(first[1])} at "
                       f"{dotted(first)}; a queue may feed one function trigger", *here, "queue", see=first)
