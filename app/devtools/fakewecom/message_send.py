"""``message/send``: a self-built app's messages to members, with WeCom's checks and errcodes."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from app.devtools.fakewecom import errcodes as E
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


class AppMessages:
    """Answers message/send. ``known_users`` (lower-cased) limits the valid recipients."""

    def __init__(
        self, credentials: Credentials, journal: Journal, known_users: Iterable[str] | None
    ) -> None:
        self._credentials = credentials
        self._journal = journal
        self.known_users = {u.lower() for u in known_users} if known_users is not None else None

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
        msgid = new_id()
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
