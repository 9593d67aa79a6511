import threading

import pytest

from app.errors import SourceError
from app.health import Health
from app.retry import Retry, RetryPolicy


class Flaky:
    """Fails with `error` the first `failures` calls, then returns the number of calls."""

    def __init__(self, failures: int, error: Exception) -> None:
        self.failures, self.error, self.calls = failures, error, 0

    def __call__(self) -> int:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return self.calls


def transient_oserror(e: Exception) -> str | None:
    return f"busy: {e}" if isinstance(e, OSError) else None


def test_delays_grow_by_the_base_delay_up_to_the_cap():
    p = RetryPolicy(base_delay=0.25, max_delay=1.0)
    assert [p.delay(n) for n in range(1, 7)] == [0.25, 0.5, 0.75, 1.0, 1.0, 1.0]
    assert {RetryPolicy.every(2.0, 30).delay(n) for n in range(1, 5)} == {2.0}


def test_transient_failures_are_retried_and_counted_in_health():
    health = Health()
    step = Flaky(3, OSError("EAGAIN"))
    assert Retry(RetryPolicy(timeout=10, base_delay=0.001), health).call("probing", step, transient_oserror) == 4
    assert health.retries == 3 and health.state == "retrying" and health.last_error == "busy: EAGAIN"


def test_a_failure_that_is_not_transient_propagates_at_once():
    step = Flaky(5, KeyError("bug"))
    with pytest.raises(KeyError):
        Retry(RetryPolicy(timeout=10, base_delay=0.001)).call("probing", step, transient_oserror)
    assert step.calls == 1


def test_giving_up_names_the_step_the_last_failure_and_the_setting():
    health = Health()
    retry = Retry(RetryPolicy(timeout=0.05, base_delay=0.01), health, error=SourceError)
    with pytest.raises(SourceError, match=r"^opening x: busy: gone; giving up after 0 s \(source\.open_timeout\)$"):
        retry.call("opening x", Flaky(10**6, OSError("gone")), transient_oserror, setting="source.open_timeout")
    assert health.state == "failed"


def test_timeout_zero_retries_until_it_works():
    step = Flaky(20, OSError("later"))
    assert Retry(RetryPolicy(timeout=10, base_delay=0.0001)).call("x", step, transient_oserror, timeout=0) == 21


@pytest.mark.parametrize("which", [0, 1])
def test_any_stop_event_ends_the_wait_at_once(which):
    stops = [threading.Event(), threading.Event()]
    stops[which].set()
    retry = Retry(RetryPolicy(timeout=0, base_delay=3600), stops=stops, error=SourceError)
    with pytest.raises(SourceError, match=r"^x: stopped while retrying \(busy: down\)$"):
        retry.call("x", Flaky(1, OSError("down")), transient_oserror)
