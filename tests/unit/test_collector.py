"""pearl.collector: pausing the cyclic garbage collector, and freezing what startup built."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from pearl import collector


@pytest.fixture(autouse=True)
def collector_on() -> Iterator[None]:
    gc.enable()
    yield
    gc.enable()


def test_a_pause_turns_the_collector_off_and_back_on() -> None:
    with collector.paused():
        assert not gc.isenabled()
    assert gc.isenabled()


def test_the_collector_comes_back_on_even_when_the_block_fails() -> None:
    with pytest.raises(RuntimeError), collector.paused():
        raise RuntimeError("boom")
    assert gc.isenabled()


def test_nested_pauses_end_with_the_outermost() -> None:
    with collector.paused():
        with collector.paused():
            assert not gc.isenabled()
        assert not gc.isenabled()
    assert gc.isenabled()


def test_a_collector_that_was_off_stays_off() -> None:
    gc.disable()
    with collector.paused():
        assert not gc.isenabled()
    assert not gc.isenabled()


def test_overlapping_pauses_on_two_threads_end_with_the_last() -> None:
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen: dict[str, bool] = {}

    def second() -> None:
        with collector.paused():
            second_in.set()
            first_out.wait(5)
            seen["after the first left"] = gc.isenabled()

    with collector.paused():
        first_in.set()
        thread = threading.Thread(target=second)
        thread.start()
        assert second_in.wait(5)
    first_out.set()
    thread.join(5)
    assert seen == {"after the first left": False}
    assert gc.isenabled()


def test_freezing_exempts_what_is_alive_from_collections() -> None:
    kept = [object() for _ in range(10)]
    before = gc.get_freeze_count()
    try:
        collector.freeze_startup()
        assert gc.get_freeze_count() >= before + len(kept)
        assert not any(obj is kept for obj in gc.get_objects())  # scanned by none
    finally:
        gc.unfreeze()


def test_gunicorn_workers_freeze_what_they_built() -> None:
    from pearl import gunicorn_conf

    before = gc.get_freeze_count()
    try:
        gunicorn_conf.post_worker_init(worker=None)
        assert gc.get_freeze_count() > before
    finally:
        gc.unfreeze()
