"""Run as ``python -m tests.api._gevent_check``: the client under gevent monkey-patching.

Prints one JSON line: how many of N concurrent greenlet sends succeeded and how many gettoken
calls the (in-process, now greenlet-based) fake saw.
"""

from gevent import monkey

monkey.patch_all()

import json  # noqa: E402 - after patching, like a gevent worker
import sys  # noqa: E402

import gevent  # noqa: E402

from app.devtools.fakewecom import FakeWeCom  # noqa: E402
from app.infra.api import RetryPolicy, WeComClient  # noqa: E402
from app.infra.store.memory import MemoryStore  # noqa: E402


def main(greenlets: int = 40) -> int:
    with FakeWeCom(corp_id="wwgevent", secret="s", agent_id=7) as fake:
        fake.fault("gettoken", "delay", seconds=0.3)  # all greenlets arrive during the fetch
        fake.fault("message/send", "errcode", errcode=-1, count=3)
        retry = RetryPolicy(backoff=0.01, max_backoff=0.05)
        store = MemoryStore()
        with WeComClient(
            "wwgevent", "s", store, agent_id=7, api_base=fake.base_url, retry=retry
        ) as client:
            jobs = [
                gevent.spawn(
                    client.send_message,
                    {"touser": "u1", "msgtype": "text", "text": {"content": f"m{i}"}},
                )
                for i in range(greenlets)
            ]
            gevent.joinall(jobs, timeout=30)
        ok = sum(1 for j in jobs if j.successful() and j.value["errcode"] == 0)
        result = {"ok": ok, "gettoken_calls": fake.gettoken_calls, "sent": len(fake.sent())}
    print(json.dumps(result))
    return 0


if __name__ == "__main__":
    sys.exit(main())
