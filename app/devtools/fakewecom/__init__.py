"""A fake of WeCom's server API on 127.0.0.1, for tests in this process and in others.

In-process::

    with FakeWeCom(corp_id="wwcorp", secret="app-secret", agent_id=1000002,
                   kf_secret="kf-secret", kf_accounts=["wkA"]) as fake:
        client = WeComClient("wwcorp", "app-secret", store, agent_id=1000002,
                             api_base=fake.base_url)
        fake.fault("message/send", "errcode", errcode=-1)
        ...
        assert fake.gettoken_calls == 1

As a process, ``python -m app.devtools.fakewecom --port 0 --corp-id wwcorp --secret app-secret``
prints ``http://127.0.0.1:PORT/cgi-bin/``; steer it with :class:`FakeControl`.
``flask --app wsgi fake-wecom`` starts it with the running configuration's corp id and secrets.
It binds the loopback interface only.

Modules: ``server`` (FakeWeCom, the process runner), ``httpd`` (HTTP plumbing),
``control_api`` (``/_fake/``) and ``control`` (its client); ``model`` routes each API call to
``tokens``, ``message_send``, ``kf_inbox`` or ``kf_send`` (sharing ``kf_state``), with
``faults``, ``journal`` (request log, sent messages) and ``clock`` beside them; ``protocol``
holds what they share (replies, errors, JSON bodies).

API served (real errcodes and answer shapes; see ``errcodes.py`` for what is confirmed):
``GET gettoken``, ``POST message/send``, ``POST kf/sync_msg``, ``POST kf/send_msg``,
``POST kf/send_msg_on_event``, ``POST kf/account/list``.

Control API (JSON bodies and answers; answers carry ``errcode`` 0, or HTTP 400 + ``errmsg``):

* ``GET /_fake/health`` → ``{"ok": true}``
* ``GET /_fake/sent[?api=kf/send_msg][&after=N][&wait=S]`` → ``{"sent": [{"api", "msgid",
  "time", "wall_time", "msgtype", "body", ...}], "total"}``: accepted messages in order from
  position N (``agentid``/``invaliduser`` for message/send; ``open_kfid``/``touser`` for kf;
  ``code_kind`` for send_msg_on_event); ``total`` counts them all. With ``wait``, the call is
  held up to S seconds (at most 120) until more than N were sent: a long poll.
* ``GET /_fake/requests[?endpoint=message/send]`` → ``{"requests": [{"seq", "time",
  "wall_time", "method", "endpoint", "query", "content_type", "body", "fault", "status",
  "errcode"}]}``: every API request, logged when it arrived (the secret shown as a hash).
* ``GET /_fake/stats`` → ``{"now", "gettoken_calls", "tokens_issued", "requests_by_endpoint",
  "sent", "pending_faults", "kf_messages", "waiting"}`` (``waiting``: long polls
  of ``sent`` in progress)
* ``POST /_fake/faults`` ``{"endpoint": "kf/send_msg" | "*", "count": 1, "faults": [{"kind":
  ...}]}`` (or one fault's fields inline) → ``{"pending": {endpoint: n}}``. Faults are consumed
  in order, the endpoint's own queue before the global ``"*"`` one. Kinds: ``errcode``
  (+``errcode``: -1, 45009, 45033, 95001, ...), ``http`` (+``status``), ``delay``
  (+``seconds``, then answers normally), ``delay_after`` (+``seconds``: processed at once, the
  answer held back, a timeout to a client that gives up first), ``drop`` (closes the socket,
  nothing processed),
  ``drop_after`` (processed, the answer is lost), ``token_expired`` (expires the token used,
  answers 42001), ``empty_page`` (sync_msg: empty ``msg_list`` with ``has_more`` 1).
* ``POST /_fake/faults/clear``
* ``POST /_fake/kf/enqueue`` ``{"open_kfid", "messages": [...]}``, each message one of
  ``{"external_userid", "text": "hi"}``, ``{"external_userid", "msgtype": "image", "image":
  {...}}``, ``{"external_userid", "event": "enter_session", "scene": ..., "welcome_code":
  true}``, ``{"event": {full event object}}``, ``{"origin": 5, "servicer_userid", ...}``
  → ``{"token", "open_kfid", "msgids", "codes": [{"code", "kind", "msgid", "expires_at"}],
  "welcome_codes"}``; ``token`` goes into the kf_msg_or_event callback (valid 10 minutes).
* ``POST /_fake/kf/accounts`` ``{"open_kfid", "name"}``
* ``POST /_fake/kf/session`` ``{"open_kfid", "external_userid", "state": 0..4}``
* ``POST /_fake/tokens/expire`` ``{"token": optional}`` → 42001 from now on; ``{"expired": n}``
* ``POST /_fake/tokens/revoke`` ``{"token": optional}`` → 40014 from now on; ``{"revoked": n}``
* ``POST /_fake/clock`` ``{"advance": seconds}`` → ``{"now"}`` (tokens, codes, windows age)
* ``POST /_fake/config`` ``{"expires_in": n}``
* ``POST /_fake/apps`` ``{"secret", "agent_id", "kf": true}``
* ``POST /_fake/reset``: forget messages, tokens, faults, logs and the clock offset
"""

from app.devtools.fakewecom.control import FakeControl, FakeControlError
from app.devtools.fakewecom.model import App, FakeWeComState, Fault
from app.devtools.fakewecom.server import FakeWeCom

__all__ = ["App", "FakeControl", "FakeControlError", "FakeWeCom", "FakeWeComState", "Fault"]
