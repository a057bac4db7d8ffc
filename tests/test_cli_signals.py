"""The command line's signal handling for long commands: the first Ctrl-C or SIGTERM is a stop request that the
library's callbacks return; a second one acts as if no handler had been installed."""

from __future__ import annotations

import os
import signal
import time

import pytest

from adain.cli._signals import StopRequests


def _deliver(signum: int) -> None:
    os.kill(os.getpid(), signum)
    time.sleep(0.2)  # Python runs the handler between bytecodes of the main thread


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_the_first_signal_is_a_request_and_the_handlers_are_put_back(signum):
    before = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    with StopRequests() as stop:
        assert not stop.requested
        _deliver(signum)
        assert stop.requested and stop.signum == signum
    assert {s: signal.getsignal(s) for s in before} == before


def test_a_second_signal_does_what_the_previous_handler_does():
    calls = []
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: calls.append(signum))
    try:
        with StopRequests() as stop:
            _deliver(signal.SIGTERM)
            assert stop.requested and calls == []
            _deliver(signal.SIGTERM)
            assert calls == [signal.SIGTERM]
        with StopRequests(), pytest.raises(KeyboardInterrupt):  # Python's default for SIGINT
            _deliver(signal.SIGINT)
            _deliver(signal.SIGINT)
    finally:
        signal.signal(signal.SIGTERM, previous)
