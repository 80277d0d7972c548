"""FaultProxy without a broker: argument checks and lifecycle errors."""

from __future__ import annotations

import pytest

from governed_kafka.testing import FaultProxy


@pytest.mark.parametrize("fraction", [-0.1, 1.5])
def test_drop_fraction_outside_zero_to_one_is_refused(fraction: float) -> None:
    """drop_responses() refuses a fraction outside [0, 1] and names the argument."""
    with FaultProxy() as proxy, pytest.raises(ValueError, match=r"fraction.*between 0 and 1"):
        proxy.drop_responses(fraction)


def test_negative_latency_is_refused() -> None:
    """add_latency() refuses negative seconds or jitter, quoting both values."""
    with FaultProxy() as proxy, pytest.raises(ValueError, match=r"-1"):
        proxy.add_latency(0.1, jitter=-1)


def test_negative_stall_is_refused() -> None:
    """stall() refuses a negative duration."""
    with FaultProxy() as proxy, pytest.raises(ValueError, match="stall"):
        proxy.stall(-1)


def test_malformed_upstream_address_names_it() -> None:
    """An upstream that is not host:port is refused with the address in the message."""
    with pytest.raises(ValueError, match="'broker-without-port'"):
        FaultProxy("broker-without-port")


def test_controls_of_a_proxy_that_is_not_running_raise() -> None:
    """Fault controls on a proxy that was never started say to start it."""
    proxy = FaultProxy()
    with pytest.raises(RuntimeError, match=r"start\(\) it first"):
        proxy.drop_responses(0.5)


def test_port_of_a_proxy_that_never_started_raises() -> None:
    """A proxy has no address before it starts; asking for one says so."""
    with pytest.raises(RuntimeError, match="not started"):
        _ = FaultProxy().bootstrap_servers


def test_restarted_proxy_listens_on_the_same_port() -> None:
    """stop() then start() comes back on the same port, so advertised addresses stay valid."""
    proxy = FaultProxy().start()
    try:
        port = proxy.port
        proxy.stop()
        assert not proxy.running
        proxy.start()
        assert proxy.port == port
    finally:
        proxy.stop()
