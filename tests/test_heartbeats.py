"""The memory of silent workers shared by every watch of a process (``daskml_lab._runtime.heartbeats``)."""

from __future__ import annotations

import time

import pytest

from daskml_lab._runtime import heartbeats
from daskml_lab._runtime.heartbeats import Heartbeats, known_silent


@pytest.fixture(autouse=True)
def fresh_memory(monkeypatch):
    monkeypatch.setattr(heartbeats, "_FOUND_SILENT", {})


def _found_silent(records):
    first = Heartbeats()
    first.heard(records)
    time.sleep(0.01)
    assert set(first.silent(0.0)) == set(records)


def test_a_later_watch_knows_at_once_a_worker_still_silent():
    _found_silent({"w": {"last_seen": 1.0}})
    later = Heartbeats(recall=True)
    later.heard({"w": {"last_seen": 1.0}, "x": {"last_seen": 5.0}})
    assert known_silent({"w": {"last_seen": 1.0}, "x": {"last_seen": 5.0}}) == {"w"}
    # silent since the first watch saw it, not since this one started: longer than this watch has existed
    assert set(later.silent(0.005)) == {"w"}
    # a watch that keeps its own delay starts its clock afresh
    own = Heartbeats()
    own.heard({"w": {"last_seen": 1.0}})
    assert own.silent(60.0) == {}


def test_one_heartbeat_forgets_it():
    _found_silent({"w": {"last_seen": 1.0}})
    later = Heartbeats(recall=True)
    later.heard({"w": {"last_seen": 2.0}})
    assert known_silent({"w": {"last_seen": 2.0}}) == set()
    assert later.silent(60.0) == {}
    # and a watch after that starts afresh too
    assert known_silent({"w": {"last_seen": 1.0}}) == set()


def test_watches_on_a_fake_clock_remember_nothing():
    now = [0.0]
    beats = Heartbeats(clock=lambda: now[0])
    beats.heard({"w": {"last_seen": 1.0}})
    now[0] = 20.0
    assert set(beats.silent(10.0)) == {"w"}
    assert known_silent({"w": {"last_seen": 1.0}}) == set()


def test_an_older_record_does_not_forget_it():
    # a watch may still hold the scheduler's record from before the pause: not a heartbeat
    _found_silent({"w": {"last_seen": 2.0}})
    Heartbeats().heard({"w": {"last_seen": 1.0}})
    assert known_silent({"w": {"last_seen": 2.0}}) == {"w"}
