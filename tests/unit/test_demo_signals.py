"""`sigap demo` stops on SIGTERM and SIGHUP the way it does on Ctrl-C (its services too)."""

from __future__ import annotations

import signal

import pytest

from sigap.demo import stop_on_signals


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGHUP])
def test_a_signal_stops_the_demo_like_ctrl_c(sig: signal.Signals) -> None:
    before = signal.getsignal(sig)
    with pytest.raises(KeyboardInterrupt), stop_on_signals():
        signal.raise_signal(sig)  # the handler runs before this call returns
    assert signal.getsignal(sig) == before  # and the old handler is back afterwards
