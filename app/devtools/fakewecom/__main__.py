"""Run the fake as a process.

``python -m app.devtools.fakewecom --port 9999 --corp-id ... --secret ...``

Prints the API base URL (``http://127.0.0.1:PORT/cgi-bin/``) as its first line of output, then
serves until SIGTERM/SIGINT or ``--max-lifetime`` seconds (so a forgotten fake does not linger).
``flask fake-wecom`` does the same with the running configuration's corp id and secrets.
"""

from __future__ import annotations

import argparse
import sys

from app.devtools.fakewecom.server import (
    DEFAULT_MAX_LIFETIME,
    LOOPBACK_HOSTS,
    FakeWeCom,
    serve_until_stopped,
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.devtools.fakewecom", description=__doc__)
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port")
    parser.add_argument(
        "--host", default="127.0.0.1", choices=LOOPBACK_HOSTS, help="a loopback address"
    )
    parser.add_argument("--corp-id", default="wwfakecorp000001")
    parser.add_argument("--secret", default="fake-app-secret", help="the app's secret")
    parser.add_argument("--agent-id", type=int, default=1000002)
    parser.add_argument("--kf-secret", default=None, help="a separate 微信客服 secret")
    parser.add_argument(
        "--kf-account",
        action="append",
        default=None,
        help="an open_kfid (repeatable; default wkFAKEKF000001)",
    )
    parser.add_argument(
        "--known-user",
        action="append",
        default=None,
        help="restrict message/send recipients to these userids (repeatable)",
    )
    parser.add_argument("--expires-in", type=int, default=7200, help="gettoken expires_in")
    parser.add_argument(
        "--max-lifetime",
        type=float,
        default=DEFAULT_MAX_LIFETIME,
        help="exit after this many seconds",
    )
    args = parser.parse_args(argv)

    fake = FakeWeCom(
        corp_id=args.corp_id,
        secret=args.secret,
        agent_id=args.agent_id,
        kf_secret=args.kf_secret,
        kf_accounts=args.kf_account or ("wkFAKEKF000001",),
        known_users=args.known_user,
        expires_in=args.expires_in,
        host=args.host,
        port=args.port,
    )
    try:
        serve_until_stopped(
            fake, args.max_lifetime, lambda running: print(running.base_url, flush=True)
        )
    except OSError as exc:  # the port is taken, or the address cannot be bound
        print(f"error: cannot listen on {args.host}:{args.port}: {exc.strerror}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
