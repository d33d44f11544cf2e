"""The event queue contract (squall/store/events.py), run against every store backend."""

from __future__ import annotations

import threading

from squall.store.base import BaseStore
from squall.store.events import DeadReason, EventResult, EventStatus, Lease, NewEvent, Outcome

NOW = 1_000_000.0
WINDOW = 3600.0


def event(event_id: str, *, function: str = "fn", run_at: float = NOW, key: str | None = None,
          payload: bytes = b'{"n": 1}', source: str = "invoke", attempts: int = 3) -> NewEvent:
    return NewEvent(event_id, function, payload, source, attempts, NOW + 600, run_at, key)


def enqueue(store: BaseStore, *events: NewEvent, now: float = NOW) -> list[str]:
    return store.enqueue_events(events, now=now, idempotency_window=WINDOW)


def claim(store: BaseStore, *, limit: int = 10, now: float = NOW, owner: str = "node-a") -> list[str]:
    return [e.id for e in store.claim_events(owner, limit=limit, now=now, lease_until=now + 30)]


def test_a_claimed_event_is_running_with_one_attempt_and_claimed_once(store: BaseStore) -> None:
    assert enqueue(store, event("e1", payload=b"\x00binary\xff", run_at=NOW - 2)) == ["e1"]

    [claimed] = store.claim_events("node-a", limit=10, now=NOW, lease_until=NOW + 30)

    assert (claimed.id, claimed.function, claimed.payload, claimed.source) == ("e1", "fn", b"\x00binary\xff", "invoke")
    assert (claimed.status, claimed.attempts, claimed.max_attempts) == (EventStatus.RUNNING, 1, 3)
    assert claimed.run_at == NOW - 2  # when it was due; the stored run_at is now the lease's end
    assert claim(store) == []
    assert store.count_events("fn")[EventStatus.RUNNING] == 1


def test_claims_take_due_events_oldest_due_first_up_to_the_limit(store: BaseStore) -> None:
    enqueue(store, event("late", run_at=NOW + 5), event("b", run_at=NOW - 1), event("a", run_at=NOW - 2),
            event("c", run_at=NOW))

    assert sorted(claim(store, limit=2)) == ["a", "b"]
    assert claim(store) == ["c"]
    assert claim(store, now=NOW + 5) == ["late"]


def test_concurrent_claimers_never_share_an_event(store_factory) -> None:  # type: ignore[no-untyped-def]
    first = store_factory()
    enqueue(first, *(event(f"e{i:03}") for i in range(200)))
    stores = [first] + [store_factory() for _ in range(3)]
    taken: list[list[str]] = [[] for _ in stores]

    def work(index: int) -> None:
        while batch := claim(stores[index], limit=7, owner=f"node-{index}"):
            taken[index] += batch

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(stores))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    every = [event_id for batch in taken for event_id in batch]
    assert sorted(every) == [f"e{i:03}" for i in range(200)]


def test_finishing_deletes_retries_releases_and_parks(store: BaseStore) -> None:
    enqueue(store, *(event(name) for name in ("ok", "again", "throttled", "dead")))
    claim(store)

    store.finish_events([
        EventResult("ok", Outcome.SUCCEEDED),
        EventResult("again", Outcome.RETRY, run_at=NOW + 2, error="boom"),
        EventResult("throttled", Outcome.RELEASE, run_at=NOW + 1),
        EventResult("dead", Outcome.DEAD, error="gave up", dead_reason=DeadReason.EVENT_AGE_EXCEEDED),
    ], now=NOW + 1)

    assert store.get_event("ok") is None
    again, throttled, dead = (store.get_event(name) for name in ("again", "throttled", "dead"))
    assert again is not None and (again.status, again.run_at, again.last_error, again.attempts) == (
        EventStatus.QUEUED, NOW + 2, "boom", 1)
    assert throttled is not None and (throttled.status, throttled.attempts) == (EventStatus.QUEUED, 0)
    assert dead is not None and (dead.status, dead.dead_reason, dead.last_error, dead.finished_at) == (
        EventStatus.DEAD, DeadReason.EVENT_AGE_EXCEEDED, "gave up", NOW + 1)
    assert claim(store, now=NOW + 1) == ["throttled"]
    assert claim(store, now=NOW + 2) == ["again"]
    assert [e.id for e in store.list_events("fn", EventStatus.DEAD)] == ["dead"]


def test_an_idempotency_key_answers_with_the_first_id_within_the_window(store: BaseStore) -> None:
    assert enqueue(store, event("first", key="k1")) == ["first"]
    assert enqueue(store, event("second", key="k1"), event("other", key="k2")) == ["first", "other"]
    assert enqueue(store, event("elsewhere", function="fn2", key="k1")) == ["elsewhere"]

    claim(store)
    store.finish_events([EventResult("first", Outcome.SUCCEEDED)], now=NOW)
    assert enqueue(store, event("third", key="k1"), now=NOW + 10) == ["first"]  # kept while its key answers
    assert enqueue(store, event("fourth", key="k1"), now=NOW + WINDOW + 1) == ["fourth"]
    assert store.get_event("second") is None and store.get_event("third") is None


def test_expired_leases_and_a_restarted_owner_give_events_back(store: BaseStore) -> None:
    enqueue(store, event("mine"), event("theirs"))
    store.claim_events("node-a", limit=1, now=NOW, lease_until=NOW + 100)
    store.claim_events("node-b", limit=1, now=NOW, lease_until=NOW + 10)

    assert store.requeue_expired(now=NOW + 5) == 0
    assert store.next_due() == NOW + 10
    assert store.requeue_expired(now=NOW + 11) == 1
    assert store.requeue_expired(now=NOW + 12, owner="node-a") == 1

    again = store.claim_events("node-c", limit=10, now=NOW + 12, lease_until=NOW + 40)
    assert sorted(e.id for e in again) == ["mine", "theirs"] and {e.attempts for e in again} == {2}


def test_events_stored_under_a_lease_are_running_for_their_owner_and_never_claimed(store: BaseStore) -> None:
    lease = Lease("node-a", NOW + 30, frozenset({"mine", "dup", "absent"}))
    enqueue(store, event("first", key="k"))

    ids = store.enqueue_events([event("mine"), event("dup", key="k"), event("other")], now=NOW,
                               idempotency_window=WINDOW, lease=lease)

    assert ids == ["mine", "first", "other"]  # a repeated key is not stored, leased or not
    mine = store.get_event("mine")
    assert mine is not None and (mine.status, mine.attempts, mine.run_at) == (EventStatus.RUNNING, 1, NOW + 30)
    assert store.get_event("dup") is None and store.get_event("absent") is None
    assert sorted(claim(store)) == ["first", "other"]
    assert store.count_events("fn")[EventStatus.RUNNING] == 3
    store.finish_events([EventResult("mine", Outcome.SUCCEEDED)], now=NOW + 1)
    assert store.get_event("mine") is None


def test_an_event_stored_under_a_lease_runs_again_after_it(store: BaseStore) -> None:
    store.enqueue_events([event("e1"), event("e2")], now=NOW, idempotency_window=WINDOW,
                         lease=Lease("node-a", NOW + 30, frozenset({"e1", "e2"})))

    assert store.next_due() == NOW + 30
    assert store.requeue_expired(now=NOW + 29) == 0
    assert store.requeue_expired(now=NOW + 31) == 2  # its node died: another claims it
    again = store.claim_events("node-b", limit=10, now=NOW + 31, lease_until=NOW + 60)
    assert sorted(e.id for e in again) == ["e1", "e2"] and {e.attempts for e in again} == {2}


def test_next_due_is_the_earliest_queued_or_lease_end(store: BaseStore) -> None:
    assert store.next_due() is None
    enqueue(store, event("a", run_at=NOW + 50), event("b", run_at=NOW + 20))
    assert store.next_due() == NOW + 20


def test_dead_letters_are_redriven_and_purged(store: BaseStore) -> None:
    enqueue(store, *(event(f"d{i}") for i in range(4)), event("live"))
    claim(store)
    store.finish_events([EventResult(f"d{i}", Outcome.DEAD, error="x") for i in range(4)], now=NOW)

    assert store.redrive_events("fn", ["d0", "live"], now=NOW + 5, expires_at=NOW + 900) == 1
    redriven = store.get_event("d0")
    assert redriven is not None and (redriven.status, redriven.attempts, redriven.run_at, redriven.expires_at) == (
        EventStatus.QUEUED, 0, NOW + 5, NOW + 900)
    assert store.purge_events("fn", ["d1"]) == 1
    assert store.purge_events("other", None) == 0
    assert store.redrive_events("fn", None, now=NOW + 6, expires_at=NOW + 900) == 2
    assert store.count_events("fn")[EventStatus.DEAD] == 0
    assert store.purge_events("fn", None) == 0


def test_counts_and_pending_sources(store: BaseStore) -> None:
    enqueue(store, event("a", source="schedule:nightly"), event("b", function="g"))

    assert store.pending_sources(["schedule:nightly", "schedule:other"]) == {"schedule:nightly"}
    assert store.pending_sources([]) == set()
    assert store.count_events()[EventStatus.QUEUED] == 2
    assert store.count_events("g") == {EventStatus.QUEUED: 1, EventStatus.RUNNING: 0,
                                       EventStatus.SUCCEEDED: 0, EventStatus.DEAD: 0}


def test_cancelling_a_sources_queued_events_leaves_running_ones(store: BaseStore) -> None:
    enqueue(store, event("running", source="schedule:f/s"))
    claim(store)
    enqueue(store, event("queued", source="schedule:f/s"), event("other", source="invoke"))

    assert store.cancel_queued_events("schedule:f/s") == 1
    assert store.get_event("queued") is None
    assert store.get_event("running") is not None and store.get_event("other") is not None


def test_an_event_knows_when_an_older_one_of_its_source_is_pending(store: BaseStore) -> None:
    enqueue(store, event("old", source="schedule:f/s"))
    enqueue(store, event("new", source="schedule:f/s"), event("other", source="invoke"), now=NOW + 1)
    claimed = {e.id: e for e in store.claim_events("n", limit=10, now=NOW + 1, lease_until=NOW + 30)}

    assert store.runs_before(claimed["new"]) and not store.runs_before(claimed["old"])
    assert not store.runs_before(claimed["other"])
    store.finish_events([EventResult("old", Outcome.RETRY, run_at=NOW + 9)], now=NOW + 1)
    assert store.runs_before(claimed["new"])  # waiting for its retry still counts
    assert claim(store, now=NOW + 9) == ["old"]
    store.finish_events([EventResult("old", Outcome.DEAD, error="x")], now=NOW + 9)
    assert not store.runs_before(claimed["new"])


def test_succeeded_events_kept_for_their_key_are_forgotten_later(store: BaseStore) -> None:
    enqueue(store, event("keyed", key="k"), event("plain"))
    claim(store)
    store.finish_events([EventResult("keyed", Outcome.SUCCEEDED), EventResult("plain", Outcome.SUCCEEDED)],
                        now=NOW)

    assert store.forget_succeeded(before=NOW - 1) == 0
    assert store.forget_succeeded(before=NOW + 1) == 1
    assert store.get_event("keyed") is None


def test_the_events_of_a_function_include_those_of_its_aliases_and_versions(store: BaseStore) -> None:
    enqueue(store, event("plain", function="my_fn"), event("aliased", function="my_fn:stable"),
            event("numbered", function="my_fn:7"), event("other", function="myXfn:stable"),
            event("prefix", function="my_fn2"))
    claim(store)
    store.finish_events([EventResult(i, Outcome.DEAD, error="x", dead_reason=DeadReason.RETRIES_EXHAUSTED)
                         for i in ("plain", "aliased", "numbered", "other", "prefix")], now=NOW + 1)

    assert sorted(e.id for e in store.list_events("my_fn", EventStatus.DEAD)) == ["aliased", "numbered", "plain"]
    assert store.count_events("my_fn")[EventStatus.DEAD] == 3  # `_` is not a wildcard: myXfn is not counted
    assert store.redrive_events("my_fn", ["aliased"], now=NOW + 2, expires_at=NOW + 600) == 1
    assert store.purge_events("my_fn", None) == 2
    assert [e.id for e in store.list_events("myXfn", EventStatus.DEAD)] == ["other"]


def test_a_late_result_never_ends_another_nodes_run_and_repeating_it_changes_nothing(store: BaseStore) -> None:
    enqueue(store, event("taken"), event("mine"), event("twice"))
    claim(store, owner="node-a")
    store.requeue_expired(now=NOW + 2000)  # node-a's lease ended: the events are queued again
    claim(store, now=NOW + 2000, owner="node-b")

    late = [EventResult("taken", Outcome.SUCCEEDED), EventResult("mine", Outcome.DEAD, error="x")]
    store.finish_events(late, now=NOW + 2001, owner="node-a")
    assert {e.id: e.status for e in store.list_events("fn", EventStatus.RUNNING)} == {
        "taken": EventStatus.RUNNING, "mine": EventStatus.RUNNING, "twice": EventStatus.RUNNING}

    done = [EventResult("twice", Outcome.RETRY, run_at=NOW + 2100, error="again")]
    store.finish_events(done, now=NOW + 2002, owner="node-b")
    store.finish_events(done, now=NOW + 2003, owner="node-b")  # its answer was lost: written again
    again = store.get_event("twice")
    assert again is not None and (again.status, again.run_at, again.attempts) == (EventStatus.QUEUED, NOW + 2100, 2)


def test_renewing_extends_only_the_owners_running_leases(store: BaseStore) -> None:
    enqueue(store, event("a"), event("b"), event("c"))
    claim(store, owner="node-a", limit=2)  # a and b
    claim(store, owner="node-b")  # c

    assert store.renew_leases(["a", "b", "c", "gone"], owner="node-a", until=NOW + 5000) == 2
    assert store.renew_leases([], owner="node-a", until=NOW + 5000) == 0

    leases = {e.id: e.run_at for e in store.list_events("fn", EventStatus.RUNNING)}
    assert leases["a"] == leases["b"] == NOW + 5000 and leases["c"] < NOW + 5000
    assert store.requeue_expired(now=NOW + 4000) == 1  # c's lease ended; a's and b's did not
