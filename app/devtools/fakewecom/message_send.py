"""``message/send``: a self-built app's messages to members, with WeCom's checks and errcodes.

The duplicate check: a request with ``enable_duplicate_check: 1`` whose message equals one
delivered within ``duplicate_check_interval`` seconds (default 1800, at most 14400) is accepted
and not delivered again. WeCom's doc says only "the same content (request JSON) is not received
twice"; the fake compares the whole body except the two duplicate-check fields, remembers every
delivered message (also those sent without the check), and answers errcode 0 with the msgid of the
first delivery. All three choices are UNCONFIRMED for real WeCom.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import Any, Final

from app.devtools.fakewecom import errcodes as E
from app.devtools.fakewecom.clock import FakeClock
from app.devtools.fakewecom.journal import Journal
from app.devtools.fakewecom.protocol import Call, Reply, check_text, error, new_id, ok
from app.devtools.fakewecom.tokens import Credentials

APP_MSGTYPES: Final = frozenset(
    {
        "text",
        "markdown",
        "image",
        "voice",
        "video",
        "file",
        "textcard",
        "news",
        "mpnews",
        "template_card",
        "miniprogram_notice",
    }
)
#: duplicate_check_interval: WeCom's default and maximum, in seconds.
DEFAULT_DUPLICATE_INTERVAL: Final = 1800
MAX_DUPLICATE_INTERVAL: Final = 14400
#: Fields that switch the duplicate check on; not part of the content compared.
_CHECK_FIELDS: Final = ("enable_duplicate_check", "duplicate_check_interval")


def content_key(body: Mapping[str, Any]) -> str:
    """What the duplicate check compares: the body without its duplicate-check fields."""
    content = {k: v for k, v in body.items() if k not in _CHECK_FIELDS}
    return json.dumps(content, sort_keys=True, ensure_ascii=False)


class AppMessages:
    """Answers message/send. ``known_users`` (lower-cased) limits the valid recipients."""

    def __init__(
        self,
        credentials: Credentials,
        journal: Journal,
        known_users: Iterable[str] | None,
        clock: FakeClock,
    ) -> None:
        self._credentials = credentials
        self._journal = journal
        self._clock = clock
        self.known_users = {u.lower() for u in known_users} if known_users is not None else None
        #: content key -> (time, msgid) of its latest delivery
        self._delivered: dict[str, tuple[float, str]] = {}
        self.duplicates_dropped = 0

    def reset(self) -> None:
        self._delivered.clear()
        self.duplicates_dropped = 0

    def send(self, call: Call) -> Reply:
        body = call.body
        agentid = body.get("agentid")
        if agentid is None or agentid == "":
            return error(E.MISSING_AGENTID)
        try:
            agent = int(agentid)
        except (TypeError, ValueError):
            return error(E.INVALID_AGENTID)
        owner = self._credentials.app_with_agent(agent)
        if owner is None:
            return error(E.INVALID_AGENTID)
        if call.app is None or owner.secret != call.app.secret:
            return error(E.AGENT_NOT_OF_TOKEN)
        users = [u for u in str(body.get("touser") or "").split("|") if u]
        parties = [p for p in str(body.get("toparty") or "").split("|") if p]
        tags = [t for t in str(body.get("totag") or "").split("|") if t]
        if not (users or parties or tags):
            return error(E.NO_RECIPIENTS)
        if len(users) > 1000:
            return error(E.INVALID_USERID_LIST_SIZE)
        if len(parties) > 100:
            return error(E.TOO_MANY_PARTIES)
        if len(tags) > 100:
            return error(E.TOO_MANY_TAGS)
        msgtype = body.get("msgtype")
        if msgtype not in APP_MSGTYPES:
            return error(E.INVALID_MSGTYPE)
        code = check_app_payload(str(msgtype), body.get(str(msgtype)))
        if code:
            return error(code)
        invalid: list[str] = []
        if self.known_users is not None and users != ["@all"]:
            invalid = [u.lower() for u in users if u.lower() not in self.known_users]
            if len(invalid) == len(users) and not (parties or tags):
                return error(E.ALL_RECIPIENTS_INVALID)
        key = content_key(body)
        now = self._clock.now()
        earlier = self._delivered.get(key)
        if earlier is not None and now - earlier[0] <= duplicate_interval(body):
            self.duplicates_dropped += 1
            msgid = earlier[1]
        else:
            msgid = new_id()
            self._delivered[key] = (now, msgid)
            self._journal.record("message/send", body, msgid, agentid=agent, invaliduser=invalid)
        extra: dict[str, Any] = {}
        if msgtype == "template_card":
            extra["response_code"] = new_id("rc")
        return ok(
            invaliduser="|".join(invalid),
            invalidparty="",
            invalidtag="",
            unlicenseduser="",
            msgid=msgid,
            **extra,
        )


def duplicate_interval(body: Mapping[str, Any]) -> float:
    """How far back the request's duplicate check reaches; -1 when it asks for none."""
    if body.get("enable_duplicate_check") not in (1, "1"):
        return -1.0
    try:
        interval = int(body.get("duplicate_check_interval", DEFAULT_DUPLICATE_INTERVAL))
    except (TypeError, ValueError):
        interval = DEFAULT_DUPLICATE_INTERVAL
    return float(min(max(interval, 0), MAX_DUPLICATE_INTERVAL))


def check_app_payload(msgtype: str, payload: Any) -> int:
    """The errcode for a bad message/send payload, or 0."""
    if msgtype in ("text", "markdown"):
        return check_text(payload)
    if not isinstance(payload, Mapping):
        return E.EMPTY_PARAMETER
    if msgtype in ("image", "voice", "video", "file"):
        return 0 if payload.get("media_id") else E.MISSING_MEDIA_ID
    if msgtype == "textcard":
        if not payload.get("title"):
            return E.MISSING_TITLE
        if not payload.get("description"):
            return E.MISSING_DESCRIPTION
        return 0 if payload.get("url") else E.MISSING_URL
    if msgtype in ("news", "mpnews"):
        articles = payload.get("articles")
        if msgtype == "mpnews" and not articles and payload.get("media_id"):
            return 0
        if not isinstance(articles, list) or not articles:
            return E.EMPTY_PARAMETER
        if len(articles) > 8:
            return E.TOO_MANY_ARTICLES
        ok_articles = all(isinstance(a, Mapping) and a.get("title") for a in articles)
        return 0 if ok_articles else E.MISSING_TITLE
    if msgtype == "template_card":
        return 0 if payload.get("card_type") else E.EMPTY_PARAMETER
    if msgtype == "miniprogram_notice":
        return 0 if payload.get("appid") and payload.get("title") else E.EMPTY_PARAMETER
    return 0
