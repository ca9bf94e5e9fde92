"""The one retry loop for WeCom API calls.

Transient failures (``WeComAPIError.retryable``: -1, 45009, 45033, HTTP 5xx, connection errors,
timeouts) are tried again with exponential backoff and jitter, bounded by a number of attempts and
by the time since the first one. Everything else raises at once.

A failed attempt that may have reached WeCom anyway (``may_have_reached``) is reported to the
caller's hook before the next try: a retry can repeat such a request, and a caller whose request
carries its own key (kf/send_msg's msgid) needs to know that a later "duplicate" refusal means
"an earlier try got through".
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_random_exponential,
)

from app.infra.api.errors import WeComAPIError

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Called with the error of each failed attempt that may have reached WeCom.
MaybeReached = Callable[[WeComAPIError], None]


@dataclass(frozen=True)
class RetryPolicy:
    """Bounds of the retry loop for transient failures."""

    attempts: int = 4  # total tries, the first one included
    max_time: float = 20.0  # seconds from the first try after which no new try starts
    backoff: float = 0.25  # scale of the exponential wait
    max_backoff: float = 4.0  # cap on one wait


def with_retries(
    api: str,
    fn: Callable[[], T],
    policy: RetryPolicy,
    sleep: Callable[[float], None],
    on_maybe_reached: MaybeReached | None = None,
) -> T:
    """Run ``fn`` again on transient errors of ``api`` itself.

    Errors of another API inside ``fn`` (a nested gettoken, already retried by its own loop) are
    neither retried nor reported, so the total time stays bounded by the two loops, not their
    product. ``on_maybe_reached`` hears of every attempt of ``api`` that may have reached WeCom,
    the last one included, before the error is retried or raised.
    """

    def attempt() -> T:
        try:
            return fn()
        except WeComAPIError as exc:
            if on_maybe_reached is not None and exc.may_have_reached and exc.api == api:
                on_maybe_reached(exc)
            raise

    def retryable(exc: BaseException) -> bool:
        return isinstance(exc, WeComAPIError) and exc.retryable and exc.api == api

    def before_sleep(state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        wait = state.next_action.sleep if state.next_action else 0.0
        log.warning(
            "WeCom %s attempt %d failed (%s); retrying in %.2fs",
            api,
            state.attempt_number,
            exc,
            wait,
        )

    retrying = Retrying(
        retry=retry_if_exception(retryable),
        stop=stop_after_attempt(max(policy.attempts, 1)) | stop_after_delay(policy.max_time),
        wait=wait_random_exponential(multiplier=policy.backoff, max=policy.max_backoff),
        sleep=sleep,
        reraise=True,
        before_sleep=before_sleep,
    )
    return retrying(attempt)
