"""The hook model: no-op defaults, what hooks may return, and contained failures."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

import pytest

from governed_kafka import hooks
from governed_kafka.hooks import (
    CommitDetails,
    DeliveryDetails,
    Hook,
    HookChain,
    RebalanceDetails,
    SendDetails,
)

_EVENTS = [name for name in dir(Hook) if name.startswith("on_")]


def _commit() -> CommitDetails:
    return CommitDetails(
        group_id="g", offsets=(("t", 0, 5),), reason="manual", synchronous=True, duration_s=0.01
    )


def _send() -> SendDetails:
    return SendDetails(topic="t", key=b"k", value_size=1, headers=[], client_id="c")


def _delivery() -> DeliveryDetails:
    return DeliveryDetails(
        topic="t", partition=0, offset=1, key=b"k", latency_s=0.001, error=None, client_id="c"
    )


class _Raising(Hook):
    def __init__(self) -> None:
        self.calls = 0

    def on_commit(self, details: CommitDetails) -> None:
        self.calls += 1
        raise RuntimeError("hook bug")


class _Recording(Hook):
    def __init__(self) -> None:
        self.seen: list[object] = []

    def on_commit(self, details: CommitDetails) -> None:
        self.seen.append(details)


@pytest.mark.parametrize("event", _EVENTS)
def test_every_base_hook_method_is_a_no_op(event: str) -> None:
    """Each on_* method of Hook accepts its details and returns None."""
    assert getattr(Hook(), event)(object()) is None


def test_the_base_hook_wants_every_send() -> None:
    """Hook.wants_send answers True, and a chain does not gate on an inherited one."""
    assert Hook().wants_send() is True
    assert HookChain([Hook()]).send_gate is None


def test_a_chain_of_bare_hooks_listens_to_nothing() -> None:
    """Inherited no-ops are not registered: a chain of plain Hook() objects is empty."""
    chain = HookChain([Hook(), Hook()])
    assert not chain
    assert not chain.send
    assert not chain.commit


def test_an_object_with_no_hook_method_is_refused() -> None:
    """Passing something that is not a hook raises TypeError naming it."""
    with pytest.raises(TypeError, match="is not a hook"):
        HookChain([object()])


def test_a_duck_typed_hook_needs_no_base_class() -> None:
    """Any object with an on_* method is a hook for that event alone."""

    class OnlyCommits:
        def __init__(self) -> None:
            self.seen: list[CommitDetails] = []

        def on_commit(self, details: CommitDetails) -> None:
            self.seen.append(details)

    hook = OnlyCommits()
    chain = HookChain([hook])
    details = _commit()
    chain.commit(details)
    assert hook.seen == [details]
    assert chain.commit
    assert not chain.send


def test_on_send_may_return_a_delivery_observer() -> None:
    """What on_send returns is handed back, and observe() calls it with the delivery details."""
    seen: list[DeliveryDetails] = []

    class Observing(Hook):
        def on_send(self, details: SendDetails) -> hooks.DeliveryObserver:
            return seen.append

    chain = HookChain([Observing()])
    observers = chain.observers(_send())
    assert observers is not None
    delivery = _delivery()
    chain.observe(observers, delivery)
    assert seen == [delivery]


def test_on_send_may_add_headers_to_the_record() -> None:
    """A header appended to SendDetails.headers is in the list the record is sent with."""

    class Stamping(Hook):
        def on_send(self, details: SendDetails) -> None:
            details.headers.append(("stamp", b"1"))

    details = _send()
    HookChain([Stamping()]).observers(details)
    assert details.headers == [("stamp", b"1")]


def test_a_context_manager_from_a_hook_spans_the_guarded_block() -> None:
    """around() enters what the hook returned before the block and exits it after."""
    log: list[str] = []

    class Spanning(Hook):
        def on_process(self, details: Any) -> contextlib.AbstractContextManager[None]:
            @contextlib.contextmanager
            def span() -> Iterator[None]:
                log.append("enter")
                yield
                log.append("exit")

            return span()

    with HookChain([Spanning()]).process(object()):
        log.append("handler")
    assert log == ["enter", "handler", "exit"]


def test_the_handlers_error_passes_through_the_hooks_context_manager() -> None:
    """A hook's context manager sees the handler's error and cannot swallow it."""
    seen: list[BaseException | None] = []

    class Swallowing(Hook):
        def on_process(self, details: Any) -> contextlib.AbstractContextManager[None]:
            class Manager(contextlib.AbstractContextManager[None]):
                def __exit__(self, exc_type: Any, exc: BaseException | None, tb: Any) -> bool:
                    seen.append(exc)
                    return True  # tries to swallow

            return Manager()

    with pytest.raises(ValueError, match="handler failed"):  # noqa: SIM117
        with HookChain([Swallowing()]).process(object()):
            raise ValueError("handler failed")
    assert isinstance(seen[0], ValueError)


def test_a_raising_hook_is_logged_once_then_counted(caplog: pytest.LogCaptureFixture) -> None:
    """The first failure of a hook in an event is logged with its traceback; later ones are
    only counted."""
    hook = _Raising()
    chain = HookChain([hook])
    with caplog.at_level(logging.ERROR, logger="governed_kafka.hooks"):
        for _ in range(3):
            chain.commit(_commit())
    assert len(caplog.records) == 1
    assert "on_commit" in caplog.records[0].getMessage()
    assert caplog.records[0].exc_info is not None
    assert chain.hook_failures() == 3


def test_a_raising_hook_keeps_being_called() -> None:
    """A hook that raised is called again at the next event."""
    hook = _Raising()
    chain = HookChain([hook])
    for _ in range(3):
        chain.commit(_commit())
    assert hook.calls == 3


def test_a_raising_hook_does_not_stop_the_hooks_after_it() -> None:
    """Hooks after a raising one still see the event."""
    recording = _Recording()
    chain = HookChain([_Raising(), recording])
    chain.commit(_commit())
    assert len(recording.seen) == 1


def test_failures_are_logged_once_per_hook_and_event(caplog: pytest.LogCaptureFixture) -> None:
    """The same hook failing in two events is logged once for each."""

    class RaisesEverywhere(Hook):
        def on_commit(self, details: CommitDetails) -> None:
            raise RuntimeError("commit hook bug")

        def on_rebalance(self, details: RebalanceDetails) -> None:
            raise RuntimeError("rebalance hook bug")

    chain = HookChain([RaisesEverywhere()])
    with caplog.at_level(logging.ERROR, logger="governed_kafka.hooks"):
        for _ in range(2):
            chain.commit(_commit())
            chain.rebalance(RebalanceDetails(group_id="g", kind="assign", partitions=()))
    assert len(caplog.records) == 2


def test_a_raising_delivery_observer_is_contained() -> None:
    """An observer that raises is counted as a failure and the next observer still runs."""
    seen: list[DeliveryDetails] = []

    def broken(details: DeliveryDetails) -> None:
        raise RuntimeError("observer bug")

    class Observing(Hook):
        def __init__(self, observer: hooks.DeliveryObserver) -> None:
            self.observer = observer

        def on_send(self, details: SendDetails) -> hooks.DeliveryObserver:
            return self.observer

    chain = HookChain([Observing(broken), Observing(seen.append)])
    observers = chain.observers(_send())
    assert observers is not None
    chain.observe(observers, _delivery())
    assert len(seen) == 1
    assert chain.hook_failures() == 1


def test_observer_failures_are_logged_once_per_hook(caplog: pytest.LogCaptureFixture) -> None:
    """A hook handing out a new failing observer per record is logged once, not per record."""

    class FreshObservers(Hook):
        def on_send(self, details: SendDetails) -> hooks.DeliveryObserver:
            def observer(delivery: DeliveryDetails) -> None:
                raise RuntimeError("observer bug")

            return observer

    chain = HookChain([FreshObservers()])
    with caplog.at_level(logging.ERROR, logger="governed_kafka.hooks"):
        for _ in range(5):
            observers = chain.observers(_send())
            assert observers is not None
            chain.observe(observers, _delivery())
    assert len(caplog.records) == 1
    assert chain.hook_failures() == 5


def test_a_context_manager_that_raises_on_entry_does_not_stop_the_block() -> None:
    """The guarded block runs even when the hook's context manager fails to enter."""
    ran: list[bool] = []

    class BadEntry(Hook):
        def on_process(self, details: Any) -> contextlib.AbstractContextManager[None]:
            class Manager(contextlib.AbstractContextManager[None]):
                def __enter__(self) -> None:
                    raise RuntimeError("enter bug")

                def __exit__(self, *exc_info: Any) -> None:
                    return None

            return Manager()

    chain = HookChain([BadEntry()])
    with chain.process(object()):
        ran.append(True)
    assert ran == [True]
    assert chain.hook_failures() == 1


def test_a_context_manager_that_raises_on_exit_is_contained() -> None:
    """A hook's context manager failing on exit neither raises nor hides the block's result."""

    class BadExit(Hook):
        def on_process(self, details: Any) -> contextlib.AbstractContextManager[None]:
            class Manager(contextlib.AbstractContextManager[None]):
                def __exit__(self, *exc_info: Any) -> None:
                    raise RuntimeError("exit bug")

            return Manager()

    chain = HookChain([BadExit()])
    with chain.process(object()):
        pass
    assert chain.hook_failures() == 1


class _Gated(Hook):
    def __init__(self, wanted: bool) -> None:
        self.wanted = wanted

    def wants_send(self) -> bool:
        return self.wanted

    def on_send(self, details: SendDetails) -> None:
        return None


def test_a_send_hook_with_wants_send_gates_the_send() -> None:
    """A chain whose only send hook defines wants_send asks it before each send."""
    chain = HookChain([_Gated(wanted=False)])
    assert chain.send_gate is not None
    assert chain.send_gate() is False


def test_a_send_hook_without_wants_send_observes_every_send() -> None:
    """A send hook relying on the default wants_send leaves no gate: every send is observed."""

    class Ungated(Hook):
        def on_send(self, details: SendDetails) -> None:
            return None

    assert HookChain([_Gated(wanted=False), Ungated()]).send_gate is None


def test_a_delivery_listener_disables_the_send_gate() -> None:
    """on_delivery needs every record observed, so no gate is used next to it."""

    class Deliveries(Hook):
        def on_delivery(self, details: DeliveryDetails) -> None:
            return None

    assert HookChain([_Gated(wanted=False), Deliveries()]).send_gate is None


def test_several_gates_want_a_send_when_any_of_them_does() -> None:
    """With two gated send hooks, the send is observed if either wants it."""
    chain = HookChain([_Gated(wanted=False), _Gated(wanted=True)])
    assert chain.send_gate is not None
    assert chain.send_gate() is True


def test_a_raising_gate_among_several_is_contained_and_wants_the_send() -> None:
    """A wants_send that raises counts as a failure and as wanting the send."""

    class BrokenGate(_Gated):
        def wants_send(self) -> bool:
            raise RuntimeError("gate bug")

    chain = HookChain([_Gated(wanted=False), BrokenGate(wanted=False)])
    assert chain.send_gate is not None
    assert chain.send_gate() is True
    assert chain.hook_failures() == 1


def test_a_hook_that_does_not_want_the_send_is_skipped_when_others_observe_it() -> None:
    """Next to an on_delivery hook, a send hook answering wants_send() False is not called."""
    called: list[SendDetails] = []

    class Idle(_Gated):
        def on_send(self, details: SendDetails) -> None:
            called.append(details)

    class Deliveries(Hook):
        def on_delivery(self, details: DeliveryDetails) -> None:
            return None

    chain = HookChain([Idle(wanted=False), Deliveries()])
    assert chain.observers(_send()) is None
    assert called == []


def test_the_transaction_events_reach_their_listeners() -> None:
    """Begin, commit and abort are typed events of their own, each with its details."""
    seen: list[object] = []

    class Transactions(Hook):
        def on_transaction_begin(self, details: hooks.TransactionBeginDetails) -> None:
            seen.append(details)

        def on_transaction_commit(self, details: hooks.TransactionCommitDetails) -> None:
            seen.append(details)

        def on_transaction_abort(self, details: hooks.TransactionAbortDetails) -> None:
            seen.append(details)

    chain = HookChain([Transactions()])
    begin = hooks.TransactionBeginDetails(transactional_id="t", client_id="c", sequence=1)
    commit = hooks.TransactionCommitDetails(
        transactional_id="t",
        client_id="c",
        sequence=1,
        records=3,
        group_id="g",
        offsets=(("in", 0, 3),),
        reason="routine",
        duration_s=0.2,
        commit_s=0.01,
    )
    abort = hooks.TransactionAbortDetails(
        transactional_id="t",
        client_id="c",
        sequence=2,
        records=1,
        group_id="g",
        reason="handler-error",
        duration_s=0.1,
        error=ValueError("x"),
    )
    assert chain.transaction_begin is not None
    assert chain.transaction_commit is not None
    assert chain.transaction_abort is not None
    chain.transaction_begin(begin)
    chain.transaction_commit(commit)
    chain.transaction_abort(abort)
    assert seen == [begin, commit, abort]
    assert HookChain([Hook()]).transaction_commit is None
