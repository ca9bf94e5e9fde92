"""Decrypted callback XML → plain dict with WeCom's own field names.

Values stay strings, exactly as sent: ``MsgId`` is a 64-bit number that a float (or JSON reader)
would round, ``CreateTime``/``AgentID`` are left for the caller to convert. Empty elements are
``""``. Nested structures come out as dicts, and the elements WeCom repeats come out as lists
even when a message happens to carry only one of them (see ``REPEATED``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any

from .errors import MessageError
from .xmlsafe import parse_xml

#: Elements that may repeat, as ``(parent element, child element)``; ``None`` as the parent means
#: "directly under the root". Sources: protocol reference §5.2–§5.4, §6 (field lists from the
#: docs and SDKs). Under these parents the child is always a list, and an empty parent element
#: (``<PicList/>``) becomes ``{child: []}``.
REPEATED: frozenset[tuple[str | None, str]] = frozenset(
    {
        ("PicList", "item"),  # pic_sysphoto / pic_photo_or_album / pic_weixin: SendPicsInfo
        ("Articles", "item"),  # news
        ("ExtAttr", "Item"),  # change_contact create_user / update_user
        ("SelectedItems", "SelectedItem"),  # template_card_event
        ("OptionIds", "OptionId"),  # template_card_event
        ("ApprovalNodes", "ApprovalNode"),  # open_approval_change
        ("NotifyNodes", "NotifyNode"),  # open_approval_change
        ("Items", "Item"),  # open_approval_change: ApprovalNode / NotifyNode
        ("MemChangeList", "Item"),  # change_external_chat update
        ("ApprovalInfo", "SpRecord"),  # sys_approval_change
        ("SpRecord", "Details"),  # sys_approval_change
        ("ApprovalInfo", "Notifyer"),  # sys_approval_change (official spelling)
        ("ApprovalInfo", "Comments"),  # sys_approval_change
        (None, "AuthAddOpenKfId"),  # kf_account_auth_change
        (None, "AuthDelOpenKfId"),  # kf_account_auth_change
    }
)


def _children_by_container() -> dict[str, tuple[str, ...]]:
    containers: dict[str, tuple[str, ...]] = {}
    for parent, child in sorted((p, c) for p, c in REPEATED if p is not None):
        containers[parent] = (*containers.get(parent, ()), child)
    return containers


_CONTAINERS = _children_by_container()
_ROOT_LISTS = tuple(sorted(child for parent, child in REPEATED if parent is None))
_LIST_NAMES = frozenset(child for _parent, child in REPEATED)


_LIST_NAMES_BYTES = tuple(name.encode("ascii") for name in sorted(_LIST_NAMES))


def _may_repeat(xml_text: str | bytes) -> bool:
    """Whether any element name of REPEATED occurs in the text at all. Most messages (text,
    image, most events) hold none: their parse can skip the per-element list check."""
    if isinstance(xml_text, str):
        return any(name in xml_text for name in _LIST_NAMES)
    return any(name in xml_text for name in _LIST_NAMES_BYTES)


def _force_list(ancestors: tuple[str, ...], name: str) -> bool:
    if not ancestors:  # the root element itself
        return False
    parent = ancestors[-1] if len(ancestors) > 1 else None
    return (parent, name) in REPEATED


def _fill_empty_containers(node: dict[str, Any]) -> None:
    """``<PicList/>`` parses as ``""``; give it its (empty) lists so callers can always iterate."""
    for key, value in node.items():
        if value == "" and key in _CONTAINERS:
            node[key] = {child: [] for child in _CONTAINERS[key]}
        elif isinstance(value, dict):
            _fill_empty_containers(value)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, dict):
                    _fill_empty_containers(item)


def parse_message(xml_text: str | bytes) -> dict[str, Any]:
    """Parse a decrypted message or event. Raises MessageError for unsafe or broken XML."""
    message = parse_xml(
        xml_text,
        force_list=_force_list if _may_repeat(xml_text) else None,
        list_names=_LIST_NAMES,
        error=MessageError,
    )
    _fill_empty_containers(message)  # depth is bounded by parse_xml's max_depth
    if message.get("Event") == "kf_account_auth_change":
        for name in _ROOT_LISTS:
            message.setdefault(name, [])
    return message


def dedup_key(message: Mapping[str, Any]) -> str:
    """Key under which to remember a callback so WeCom's retries are handled once.

    Messages carry ``MsgId``: the key is ``"msg:<MsgId>"``. Events have none, and the key the
    docs suggest for them (``FromUserName`` + ``CreateTime``) is too coarse: system events all
    come from ``sys`` with a one-second clock, so several contact adds, approval changes or
    ``unsubscribe`` events for different apps (differing only in ``AgentID``) in the same second
    would collapse into one and all but the first would be dropped. Events therefore use
    ``"evt:" + sha256`` over the whole parsed message (every field, AgentID included),
    serialised canonically: two events share a key only if they are identical in content,
    and a retry matches its original even if WeCom re-serialises or re-encrypts it.

    The key is unique per app only; namespace it by endpoint when one store serves several.
    """
    msg_id = message.get("MsgId")
    if isinstance(msg_id, str) and msg_id:
        return f"msg:{msg_id}"
    canonical = json.dumps(message, ensure_ascii=False, sort_keys=True, separators=(",", ":"))
    return "evt:" + hashlib.sha256(canonical.encode("utf-8")).hexdigest()


__all__ = ["REPEATED", "dedup_key", "parse_message"]
