"""微信客服 handlers for the multi-instance tests; every run is appended to WECOM_TEST_RECORD as
``<msgid> <pid>`` (as in :mod:`tests.e2e.handlers_multi`), so a test sees which instance
answered each customer message and how often.

* ``hold NAME``: waits at the gate NAME (:func:`tests.helpers.wait_at_gate`), answers ``held NAME``;
* any other text is echoed.
"""

from __future__ import annotations

from app.kf import KfRouter
from tests.e2e.handlers_multi import record_run
from tests.helpers import wait_at_gate

router = KfRouter()


@router.regex(r"^hold (\w+)$")
def hold(message: dict, match) -> str:
    record_run(str(message["msgid"]))
    wait_at_gate(match.group(1))
    return f"held {match.group(1)}"


@router.text()
def echo(message: dict) -> str:
    record_run(str(message["msgid"]))
    return str(message["text"]["content"])
