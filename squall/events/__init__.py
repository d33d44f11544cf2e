"""Everything asynchronous: async invocations, schedules, topics, queues, buckets, retries.

Events are written to the store before they are acknowledged and delivered at least once
(docs/events.md).
"""
