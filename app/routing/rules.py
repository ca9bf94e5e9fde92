"""What the app router and the 微信客服 router share: ordered rules, a default, NEXT, text matching.

A rule is a matcher plus a handler. The matcher returns a falsy value, True, or a ``re.Match``
(then passed to the handler as a second argument). Rules are tried in the order they were
registered; the default handler runs when none matched or every match returned :data:`NEXT`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Literal

Message = dict[str, Any]
Handler = Callable[..., Any]
Matcher = Callable[[Message], Any]
#: Which messages a rule sees: messages, events, or both (the kf router tells them apart).
Scope = Literal["message", "event", "any"]
Pattern = str | re.Pattern[str]

#: Returned by a handler to pass the message on to the next matching rule.
NEXT = object()


@dataclass(frozen=True)
class Rule:
    matcher: Matcher
    handler: Handler
    description: str
    scope: Scope = "any"


def text_matches(pattern: Pattern, value: str) -> Any:
    """Exact comparison for a string; for a compiled pattern, its search match (or None)."""
    if isinstance(pattern, re.Pattern):
        return pattern.search(value)
    return value == pattern


def first_text_match(patterns: Iterable[Pattern], value: str) -> Any:
    """The first truthy :func:`text_matches` result, or False."""
    for pattern in patterns:
        found = text_matches(pattern, value)
        if found:
            return found
    return False


def run_first_match(
    rules: Iterable[Rule], default_handler: Handler | None, message: Message
) -> Any:
    """Run the handler of the first rule that matches and does not return NEXT, else the
    default. A regex match is passed as a second argument."""
    for rule in rules:
        found = rule.matcher(message)
        if not found:
            continue
        if isinstance(found, re.Match):
            result = rule.handler(message, found)
        else:
            result = rule.handler(message)
        if result is not NEXT:
            return result
    if default_handler is not None:
        result = default_handler(message)
        return None if result is NEXT else result
    return None


class RuleRouter:
    """An ordered list of rules plus a default handler. Subclasses say where a message keeps its
    type and its text (:meth:`message_type`, :meth:`text_of`) and which rules a message may
    reach (:meth:`rules_for`)."""

    #: The scope of rules registered by msgtype/text/regex.
    message_scope: Scope = "any"

    def __init__(self) -> None:
        self.rules: list[Rule] = []
        self.default_handler: Handler | None = None

    # -- what subclasses define ------------------------------------------------------------------
    def message_type(self, message: Message) -> str:
        raise NotImplementedError

    def text_of(self, message: Message) -> str:
        raise NotImplementedError

    def rules_for(self, message: Message) -> Iterable[Rule] | None:
        """The rules ``message`` may reach; None when no handler may answer it at all."""
        return self.rules

    # -- registration ------------------------------------------------------------------------
    def add(
        self, matcher: Matcher, handler: Handler, description: str = "", scope: Scope = "any"
    ) -> None:
        name = description or getattr(handler, "__name__", "")
        self.rules.append(Rule(matcher, handler, name, scope))

    def on(self, matcher: Matcher, scope: Scope = "any") -> Callable[[Handler], Handler]:
        """Register a handler for messages the given predicate accepts."""

        def register(handler: Handler) -> Handler:
            self.add(matcher, handler, scope=scope)
            return handler

        return register

    def msgtype(self, *msg_types: str) -> Callable[[Handler], Handler]:
        """Messages of the given type(s): ``text``, ``image``, ``voice``, ``video``, …"""
        wanted = set(msg_types)
        return self.on(lambda message: self.message_type(message) in wanted, self.message_scope)

    def text(self, *contents: Pattern) -> Callable[[Handler], Handler]:
        """Text messages; with arguments, only those whose text equals one of them (or, for a
        compiled pattern, matches it: the match is then passed as the second argument)."""

        def matcher(message: Message) -> Any:
            if self.message_type(message) != "text":
                return False
            return first_text_match(contents, self.text_of(message)) if contents else True

        return self.on(matcher, self.message_scope)

    def regex(self, pattern: Pattern, flags: int = 0) -> Callable[[Handler], Handler]:
        """Text messages matching ``pattern``; the handler gets (message, match)."""
        compiled = re.compile(pattern, flags) if isinstance(pattern, str) else pattern
        return self.text(compiled)

    def default(self, handler: Handler) -> Handler:
        """The handler for messages no rule matched."""
        self.default_handler = handler
        return handler

    def copy(self) -> RuleRouter:
        """A router with the same rules and default, to extend without touching this one."""
        twin = type(self)()
        twin.rules = list(self.rules)
        twin.default_handler = self.default_handler
        return twin

    # -- dispatch ----------------------------------------------------------------------------
    def dispatch(self, message: Message) -> Any:
        """Run the first matching handler and return what it returned (``None``: no answer)."""
        rules = self.rules_for(message)
        if rules is None:
            return None
        return run_first_match(rules, self.default_handler, message)
