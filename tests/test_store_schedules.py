"""The schedules contract (squall/store/schedules.py), run against every store backend."""

from __future__ import annotations

import threading

from squall.store.base import BaseStore
from squall.store.events import NewEvent
from squall.store.schedules import ScheduleFire, ScheduleState

NOW = 2_000_000.0


def schedule(key: str = "fn/nightly", next_fire: float | None = NOW + 60, **config: object) -> ScheduleState:
    function, name = key.split("/")
    return ScheduleState(key, function, name, "rate(1 minute)", "UTC", NOW, next_fire, dict(config))


def run(event_id: str) -> NewEvent:
    return NewEvent(event_id, "fn", b"{}", "schedule:fn/nightly", 3, NOW + 999, NOW)


def test_saved_schedules_are_listed_replaced_and_removed(store: BaseStore) -> None:
    store.save_schedules([schedule(overlap="skip"), schedule("fn/hourly")], [])
    store.save_schedules([schedule(next_fire=NOW + 5, overlap="queue")], ["fn/hourly"])

    [saved] = store.list_schedules()
    assert (saved.key, saved.next_fire, saved.config, saved.anchor) == ("fn/nightly", NOW + 5, {"overlap": "queue"}, NOW)


def test_a_fire_time_is_applied_once_with_its_event(store: BaseStore) -> None:
    store.save_schedules([schedule()], [])
    fire = ScheduleFire("fn/nightly", NOW + 60, NOW + 120, "queued", run("r1"))

    assert store.fire_schedules([fire], now=NOW + 60) == ["fn/nightly"]
    assert store.fire_schedules([ScheduleFire("fn/nightly", NOW + 60, NOW + 120, "queued", run("r2"))],
                                now=NOW + 60) == []

    [state] = store.list_schedules()
    assert (state.next_fire, state.last_fire, state.last_status, state.last_request_id) == (
        NOW + 120, NOW + 60, "queued", "r1")
    assert store.get_event("r1") is not None and store.get_event("r2") is None


def test_two_leaders_firing_at_once_run_a_fire_time_once(store_factory) -> None:  # type: ignore[no-untyped-def]
    stores = [store_factory() for _ in range(4)]
    stores[0].save_schedules([schedule()], [])
    applied: list[list[str]] = [[] for _ in stores]

    def fire(index: int) -> None:
        applied[index] = stores[index].fire_schedules(
            [ScheduleFire("fn/nightly", NOW + 60, NOW + 120, "queued", run(f"r{index}"))], now=NOW + 60)

    threads = [threading.Thread(target=fire, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(len(keys) for keys in applied) == 1
    assert sum(stores[0].get_event(f"r{i}") is not None for i in range(4)) == 1


def test_skipped_fires_move_on_without_an_event(store: BaseStore) -> None:
    store.save_schedules([schedule()], [])

    store.fire_schedules([ScheduleFire("fn/nightly", NOW + 60, NOW + 120, "skipped (overlap)")], now=NOW + 60)

    [state] = store.list_schedules()
    assert (state.next_fire, state.last_status, state.last_request_id) == (NOW + 120, "skipped (overlap)", None)


def test_results_of_runs_and_alarms_are_recorded(store: BaseStore) -> None:
    store.save_schedules([schedule()], [])
    store.fire_schedules([ScheduleFire("fn/nightly", NOW + 60, NOW + 120, "queued", run("r1"))], now=NOW)
    store.mark_schedule_alarm("fn/nightly", NOW + 61)
    [state] = store.list_schedules()
    assert (state.last_status, state.last_success, state.alarm_raised) == ("queued", None, NOW + 61)

    store.record_schedule_result("fn/nightly", ok=False, at=NOW + 63)
    assert store.list_schedules()[0].last_status == "failed"
    store.record_schedule_result("fn/nightly", ok=True, at=NOW + 64)
    [state] = store.list_schedules()
    assert (state.last_status, state.last_success, state.alarm_raised) == ("succeeded", NOW + 64, None)


def test_one_store_handle_leads_a_role(store_factory) -> None:  # type: ignore[no-untyped-def]
    first, second = store_factory(), store_factory()

    assert first.try_lead("scheduler") and first.try_lead("scheduler")
    if type(first).__name__ == "PostgresStore":
        assert not second.try_lead("scheduler")
        first.close()
        assert second.try_lead("scheduler")
    else:  # one SQLite file serves one node
        assert second.try_lead("scheduler")
