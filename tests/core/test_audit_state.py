"""AuditState alone: exactly-once counting over overlapping re-reads, the counting start,
the bounded id memory and the scope rules, without HTTP (test_audit_logs.py runs the
same rules through a real exporter on the simulator)."""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field

from exporter.collectors.audit_state import (
    ACTOR_TYPES,
    ALERTED_TYPES,
    ActorType,
    AuditState,
    CounterKey,
    Event,
    ScopeChange,
)

START = 1_767_225_600  # 2026-01-01 00:00 UTC
OVERLAP = 600


def event(
    event_id: str,
    at: int,
    event_type: str = "login.succeeded",
    *,
    project_id: str = "",
    actor: ActorType = "session",
    scopes: ScopeChange | None = None,
) -> Event:
    return Event(event_id, event_type, at, project_id, actor, scopes)


@dataclass
class FakeLog:
    """An audit log: events appear at ``shown_at`` (late ones after their effective_at)
    and are listed newest first, as the API lists them."""

    events: list[tuple[int, Event]] = field(default_factory=list)  # (shown_at, event)

    def listing(self, after: int, now: int) -> list[Event]:
        shown = [e for shown_at, e in self.events if shown_at <= now and e.effective_at > after]
        order = {e.id: index for index, (_, e) in enumerate(self.events)}
        # Newest first; within a second the last recorded first.
        return sorted(shown, key=lambda e: (e.effective_at, order[e.id]), reverse=True)


def poll(state: AuditState, log: FakeLog, now: int) -> tuple[AuditState, list[Event]]:
    after = state.window_start
    return state.advance(log.listing(after, now), listed_after=after)


def test_random_injection_counts_every_event_since_the_start_exactly_once() -> None:
    rng = random.Random(7)
    log = FakeLog()
    types = ["api_key.created", "login.failed", "user.added", "some.future_type"]
    serial = 0
    now = START
    for _ in range(300):  # history before the start: never counted
        serial += 1
        at = START - rng.randrange(1, 86400)
        log.events.append((at, event(f"old{serial}", at, rng.choice(types))))
    state, counted = AuditState(START, OVERLAP).advance(
        log.listing(START - 7 * 86400, now), listed_after=START - 7 * 86400, count=False
    )
    assert counted == []
    assert state.counters == {}
    logged: list[Event] = []
    for _ in range(240):  # four hours of polls a minute apart
        for _ in range(rng.randrange(0, 12)):  # several a second, some in one second
            serial += 1
            at = now + rng.randrange(0, 60)
            # A fifth shows up late: listed up to 9 minutes after its effective_at.
            shown = at + (rng.randrange(60, 540) if rng.random() < 0.2 else 0)
            actor: ActorType = rng.choice(ACTOR_TYPES)
            project = rng.choice(["", "proj_a", "proj_b"])
            log.events.append(
                (shown, event(f"e{serial}", at, rng.choice(types), project_id=project, actor=actor))
            )
        now += 60
        if rng.random() < 0.15:
            continue  # a failed poll: nothing applied, the state stays
        state, counted = poll(state, log, now)
        logged.extend(counted)
    now += OVERLAP  # every late event has shown by now
    state, counted = poll(state, log, now)
    logged.extend(counted)
    truth = Counter(e.counter_key for _, e in log.events if e.effective_at >= START)
    assert dict(state.counters) == dict(truth)
    assert sorted(e.id for e in logged) == sorted(
        e.id for _, e in log.events if e.effective_at >= START
    ), "each counted once"
    assert state.counted == sum(truth.values()) > 1000


def test_an_event_below_the_counting_start_is_learned_but_never_counted() -> None:
    state = AuditState(START, OVERLAP)
    late_old = event("a", START - 5, "api_key.created", scopes=ScopeChange("key_1", "p", ("x",)))
    state, counted = state.advance([late_old], listed_after=START - OVERLAP)
    assert counted == []
    assert state.counters == {}
    assert state.last_event_at == {"api_key.created": START - 5}
    assert dict(state.live_keys())["key_1"].scopes == ("x",)


def test_ids_held_are_those_within_the_overlap_of_the_newest() -> None:
    state = AuditState(START, OVERLAP)
    events = [event(f"e{n}", START + n) for n in range(0, 7200, 3)]
    for end in range(600, 7201, 600):
        batch = [e for e in events if state.window_start < e.effective_at < START + end]
        state, _ = state.advance(batch[::-1], listed_after=state.window_start)
        newest = max(e.effective_at for e in batch)
        assert state.watermark == newest
        assert all(at > newest - OVERLAP for at in state.seen.values())
        assert len(state.seen) == len([e for e in batch if e.effective_at > newest - OVERLAP])
    assert len(state.seen) <= OVERLAP // 3
    assert state.counted == len(events)


def test_the_window_starts_an_overlap_below_the_newest_event_or_the_counting_start() -> None:
    state = AuditState(START, OVERLAP)
    assert state.window_start == START - OVERLAP
    state, _ = state.advance([event("old", START - 3600)], listed_after=START - 86400, count=False)
    assert state.window_start == START - OVERLAP, "history does not drag the window back"
    state, _ = state.advance([event("new", START + 900)], listed_after=state.window_start)
    assert state.window_start == START + 900 - OVERLAP


def test_an_event_at_or_below_the_window_is_ignored_even_if_listed() -> None:
    state, _ = AuditState(START, OVERLAP).advance(
        [event("new", START + 2000)], listed_after=START - OVERLAP
    )
    after = state.window_start
    stray = event("stray", after)  # the API should not list it: its id is forgotten
    state2, counted = state.advance([stray], listed_after=after)
    assert counted == []
    assert state2.counters == state.counters


def test_the_backfill_counts_nothing_and_marks_ids_seen() -> None:
    at_start = event("same-second", START)
    state, counted = AuditState(START, OVERLAP).advance(
        [at_start], listed_after=START - 86400, count=False
    )
    assert counted == []
    state, counted = state.advance([at_start], listed_after=state.window_start)
    assert counted == [], "an event read by the backfill is not counted when read again"
    state, counted = state.advance(
        [event("after", START), at_start], listed_after=state.window_start
    )
    assert [e.id for e in counted] == ["after"]


def test_alerted_types_are_present_at_zero_for_every_actor_type() -> None:
    state, _ = AuditState(START, OVERLAP).advance(
        [event("a", START + 1, "login.failed", actor="none")], listed_after=START - OVERLAP
    )
    samples: dict[CounterKey, int] = dict(state.counter_samples())
    assert samples[("login.failed", "", "none")] == 1
    assert samples[("login.failed", "", "session")] == 0
    assert len(samples) == len(ALERTED_TYPES) * len(ACTOR_TYPES)
    assert {key for key, value in samples.items() if value} == {("login.failed", "", "none")}


def scopes_of(state: AuditState) -> dict[str, tuple[str, tuple[str, ...]]]:
    return {key: (known.project_id, known.scopes) for key, known in state.live_keys()}


def test_scopes_follow_the_newest_key_event_and_a_deletion_removes_the_key() -> None:
    state = AuditState(START, OVERLAP)
    low = START - OVERLAP
    created = ScopeChange("key_1", "proj_a", ("api.model.request", "api.model.read"))
    state, _ = state.advance(
        [
            event("c2", START + 2, "api_key.created", scopes=ScopeChange("key_2", "proj_a", ())),
            event("c1", START + 1, "api_key.created", scopes=created),
        ],
        listed_after=low,
    )
    assert scopes_of(state) == {
        "key_1": ("proj_a", ("api.model.read", "api.model.request")),  # sorted
        "key_2": ("proj_a", ()),  # created with no scopes: unrestricted
    }
    updated = ScopeChange("key_1", "", ("api.files.write",))
    state, _ = state.advance(
        [
            event("u-none", START + 4, "api_key.updated"),  # no scopes: no change
            event("u1", START + 3, "api_key.updated", scopes=updated),
        ],
        listed_after=state.window_start,
    )
    assert scopes_of(state)["key_1"] == ("proj_a", ("api.files.write",)), "project kept"
    late = event("late", START + 2, "api_key.updated", scopes=ScopeChange("key_1", "", ("x",)))
    state, counted = state.advance([late], listed_after=state.window_start)
    assert [e.id for e in counted] == ["late"], "counted, being new"
    assert scopes_of(state)["key_1"] == ("proj_a", ("api.files.write",)), "but older: ignored"
    deleted = ScopeChange("key_1", "proj_a", None)
    state, _ = state.advance(
        [event("d1", START + 10, "api_key.deleted", scopes=deleted)],
        listed_after=state.window_start,
    )
    assert "key_1" not in scopes_of(state)
    resurrect = event("late-create", START + 5, "api_key.created", scopes=created)
    state, _ = state.advance([resurrect], listed_after=state.window_start)
    assert "key_1" not in scopes_of(state), "a late older creation does not bring it back"
    assert "key_2" in scopes_of(state)


def test_a_deletion_is_forgotten_once_below_the_window() -> None:
    state, _ = AuditState(START, OVERLAP).advance(
        [event("d", START + 1, "api_key.deleted", scopes=ScopeChange("key_1", "p", None))],
        listed_after=START - OVERLAP,
    )
    assert "key_1" in state.keys
    state, _ = state.advance([event("later", START + 2 * OVERLAP)], listed_after=state.window_start)
    assert "key_1" not in state.keys, "memory of deletions is bounded by the overlap too"


def test_advance_leaves_the_previous_state_as_it_was() -> None:
    state = AuditState(START, OVERLAP)
    after, _ = state.advance([event("a", START + 1)], listed_after=START - OVERLAP)
    assert state.counters == {}
    assert state.seen == {}
    assert state.newest is None
    assert after.counted == 1
