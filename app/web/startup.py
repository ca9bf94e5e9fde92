"""The start-up summary: what is mounted where, and what will not work as configured.

Logged once per start: by the gunicorn master's preflight (``python -m app --check``) or by
``flask run``. Workers and other ``flask`` commands log it at DEBUG only, so it neither repeats per
worker nor clutters a CLI command's output.
"""

from __future__ import annotations

import logging
import os
import sys
from urllib.parse import urlsplit

from app.settings import Settings

log = logging.getLogger("app.startup")

#: Options of the ``flask`` command itself that take a value (``flask --app wsgi run``).
_FLASK_OPTIONS_WITH_VALUE = frozenset({"--app", "-A", "--env-file", "-e"})


def summary(settings: Settings) -> list[tuple[int, str]]:
    """(level, line) pairs describing the configuration, secrets left out."""
    lines: list[tuple[int, str]] = []
    if settings.development_profile:
        lines.append(
            (
                logging.WARNING,
                "DEVELOPMENT PROFILE: public test keys (token devtoken, corp id "
                "wwdevcorp0000000); set WECOM_TOKEN, WECOM_AES_KEY and WECOM_CORP_ID before "
                "pointing WeCom at this service",
            )
        )
    if settings.forward is not None:
        parts = urlsplit(settings.forward.url)
        # Scheme, host and path only: credentials and the query string stay out of the log.
        shown = f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}"
        lines.append((logging.INFO, f"forwarding messages to {shown}{parts.path}"))
    for endpoint in settings.endpoints:
        module = endpoint.kf_handlers if endpoint.kind == "kf" else endpoint.handlers
        answered_by = module or "the forward URL"
        lines.append(
            (
                logging.INFO,
                f"endpoint {endpoint.name} ({endpoint.kind}) at {endpoint.path}, "
                f"handlers {answered_by}",
            )
        )
        if endpoint.kind == "app" and not (endpoint.secret and endpoint.agent_id):
            lines.append(
                (
                    logging.WARNING,
                    f"endpoint {endpoint.name}: WECOM_SECRET and WECOM_AGENT_ID are not both "
                    f"set, so answers slower than {settings.reply_deadline:g} s "
                    "(WECOM_REPLY_DEADLINE) cannot be delivered; they are recorded as failed",
                )
            )
        if endpoint.kind == "kf" and not endpoint.kf_secret:
            lines.append(
                (
                    logging.WARNING,
                    f"endpoint {endpoint.name}: neither WECOM_KF_SECRET nor WECOM_SECRET is "
                    "set, so 微信客服 messages can be neither pulled nor answered",
                )
            )
    lines.extend(_bot_lines(settings))
    return lines


def _bot_lines(settings: Settings) -> list[tuple[int, str]]:
    lines = []
    llm = settings.bots.llm
    for bot in settings.bots.bots:
        answered_by = bot.handlers or ("the model" if llm.enabled else "the demo bot")
        lines.append((logging.INFO, f"endpoint {bot.name} (aibot) at {bot.path}, {answered_by}"))
    if llm.enabled:
        parts = urlsplit(llm.base_url)
        where = f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}"
        lines.append((logging.INFO, f"text is answered by the model {llm.model} at {where}"))
        for endpoint in settings.endpoints:
            answered = [
                what
                for what, demo in (
                    ("messages", endpoint.demo_answers_messages),
                    ("微信客服", endpoint.demo_answers_kf),
                )
                if demo
            ]
            if answered:
                lines.append(
                    (
                        logging.INFO,
                        f"endpoint {endpoint.name}: the model answers {' and '.join(answered)}",
                    )
                )
    return lines


def log_summary(settings: Settings, loud: bool) -> None:
    """Log the summary at its levels when ``loud``, else at DEBUG."""
    for level, line in summary(settings):
        log.log(level if loud else logging.DEBUG, "%s", line)


def started_by_flask_run(argv: list[str] | None = None) -> bool:
    """True in a process serving ``flask run`` (also its reloader child), where the summary is
    the start-up output; other ``flask`` commands stay quiet."""
    argv = sys.argv if argv is None else argv
    if not argv:
        return False
    program = os.path.basename(argv[0])
    if program != "flask" and not argv[0].endswith(os.path.join("flask", "__main__.py")):
        return False
    args = iter(argv[1:])
    for arg in args:
        if arg in _FLASK_OPTIONS_WITH_VALUE:
            next(args, None)
        elif not arg.startswith("-"):
            return arg == "run"  # the first word that is not an option is the command
    return False
