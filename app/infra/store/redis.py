"""The store on Redis, shared by several service instances on several hosts.

``WECOM_STORE=redis://[[user]:password@]host[:port][/db]`` (``rediss://`` for TLS), keys under
``WECOM_REDIS_PREFIX`` (default ``wecom:``, so services can share one Redis).

Key design (``P`` is the prefix)::

    P{jobs}:job:<key>      hash        one job: kind, payload, state, owner, lease_until, reply,
                                       attempts, last_error, created_at, updated_at; claim_id and
                                       op_id make a call retried after a lost reply idempotent
    P{jobs}:leases         sorted set  keys of the non-final jobs, scored by lease_until
    P{jobs}:state:<state>  sorted set  keys of the jobs in that state, scored by updated_at
    Pvalue:<key>           hash        v: the value, x: expires_at (absent: never expires)
    Plock:<name>           hash        owner, until

Atomicity: every operation is one Redis command, one MULTI/EXEC, or one Lua script
(:mod:`.redis_lua`); none reads in one round trip and writes in another.

Redis Cluster: the ``{jobs}`` hash tag puts every job key in one slot, so each job script works
on a single slot; value and lock scripts touch one key each, except ``set_value_if_locked``
(a value and a lock: one server only). On a cluster the jobs therefore
live on one shard (claiming the oldest lease first needs one index), values and locks spread.
``claim_expired``, ``list_jobs`` and ``purge_jobs`` name job hashes from index members inside
the script rather than in KEYS; they are in the slot of the declared keys, which a cluster
serves. The prefix may not contain braces, so ``{jobs}`` stays the hash tag.

Expiry: finished jobs (passive, done) are the dedup records; Redis deletes them ``finished_ttl``
seconds (default one day, the outbox's retention) after they finished; dead letters stay until
a person acts. ``purge_jobs`` deletes them earlier when asked and cleans the indexes. A value's
or lock's expiry is compared with the caller's ``now``, as in the other stores; Redis drops the
record itself ``GRACE`` seconds after that expiry, so clocks that differ a little between hosts
never make a value disappear early. The hot paths never use KEYS or SCAN.

Failures: every call is bounded by ``socket_timeout`` and ``socket_connect_timeout`` (1 s each
by default; ``?socket_timeout=2`` in the URL changes them). A connection error is retried once,
at once, on a new connection (pooled connections are dead after Redis restarted); timeouts are
not retried, since the command may have run. Errors reach the caller as ``redis.RedisError``:
a callback is then answered 503, so WeCom retries it.

Connections: one blocking pool per process (a pool notices a fork and reconnects in the child)
of at most ``MAX_CONNECTIONS``; a caller waits at most the socket timeout for a free one.
redis-py makes its sockets through the ``socket`` module at call time, so in a gevent worker,
patched before the app loads, they are gevent's and a Redis call never blocks the hub.

Sentinel and Cluster clients: not supported. redis-py reaches Sentinel only through its
``Sentinel`` class, not through a URL, and a cluster through ``RedisCluster``; point the URL at
the primary (or a proxy that follows failovers).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Sequence
from urllib.parse import parse_qs, urlsplit

import redis
from redis.backoff import NoBackoff
from redis.retry import Retry

from . import redis_lua as lua
from .base import UNSET, Job, JobState, Store, Unset

SETTING = "WECOM_STORE"
DEFAULT_PREFIX = "wecom:"
DEFAULT_TIMEOUT = 1.0  # seconds: socket and connect timeout of every call
FINISHED_TTL = 24 * 3600.0  # seconds a finished job (the dedup record) is kept
GRACE = 600.0  # seconds past a value's or lock's expiry before Redis drops the record
MAX_CONNECTIONS = 32  # per process
_BATCH = 500  # keys per renew script, jobs per purge script
#: What a URL's query may set (others would fail only at the first connection).
URL_OPTIONS = frozenset(
    {"socket_timeout", "socket_connect_timeout", "health_check_interval", "client_name"}
    | {"ssl_cert_reqs", "ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_check_hostname"}
)

_JOB_FIELDS = ("kind", "payload", "state", "owner", "lease_until", "reply", "attempts")
_JOB_FIELDS += ("last_error", "created_at", "updated_at")


def _num(value: float) -> str:
    """A float as exact decimal text (``repr`` round-trips), for Redis to store and compare."""
    return repr(float(value))


def _job(key: str, flat: Sequence[str]) -> Job:
    """A job from a script's flat ``HGETALL`` reply."""
    fields = dict(zip(flat[::2], flat[1::2], strict=True))
    return Job(
        key=key,
        kind=fields["kind"],
        payload=fields["payload"],
        state=JobState(fields["state"]),
        owner=fields.get("owner"),
        lease_until=float(fields["lease_until"]),
        reply=fields.get("reply"),
        attempts=int(fields["attempts"]),
        last_error=fields.get("last_error"),
        created_at=float(fields["created_at"]),
        updated_at=float(fields["updated_at"]),
    )


def _jobs(flat: Sequence[object]) -> list[Job]:
    """Jobs from a script's ``{member, fields, member, fields, ...}`` reply."""
    return [_job(str(flat[i]), flat[i + 1]) for i in range(0, len(flat), 2)]  # type: ignore[arg-type]


class RedisStore(Store):
    """A :class:`Store` on the Redis that ``client`` talks to (it must decode responses)."""

    def __init__(
        self,
        client: redis.Redis,
        *,
        prefix: str = DEFAULT_PREFIX,
        finished_ttl: float = FINISHED_TTL,
    ) -> None:
        if "{" in prefix or "}" in prefix:
            raise ValueError(f"the key prefix {prefix!r} must not contain braces")
        self.client = client
        self.prefix = prefix
        self._finished_ttl_ms = str(int(finished_ttl * 1000))
        self._job_prefix = f"{prefix}{{jobs}}:job:"
        self._leases = f"{prefix}{{jobs}}:leases"
        self._state_keys = [f"{prefix}{{jobs}}:state:{s.value}" for s in lua.STATE_ORDER]
        register = client.register_script
        self._claim_job = register(lua.CLAIM_JOB)
        self._update_job = register(lua.UPDATE_JOB)
        self._renew_leases = register(lua.RENEW_LEASES)
        self._claim_expired = register(lua.CLAIM_EXPIRED)
        self._release_leases = register(lua.RELEASE_LEASES)
        self._list_jobs = register(lua.LIST_JOBS)
        self._purge_jobs = register(lua.PURGE_JOBS)
        self._delete_value_if = register(lua.DELETE_VALUE_IF)
        self._set_value_if_locked = register(lua.SET_VALUE_IF_LOCKED)
        self._acquire_lock = register(lua.ACQUIRE_LOCK)
        self._release_lock = register(lua.RELEASE_LOCK)

    @classmethod
    def from_url(cls, url: str, *, prefix: str = DEFAULT_PREFIX) -> RedisStore:
        """Connect and check the connection (PING); raises ValueError naming ``WECOM_STORE``.

        The messages name host, port and database, never the password.
        """
        shown = _describe(url)
        if "{" in prefix or "}" in prefix:
            raise ValueError(
                f"{SETTING}: the key prefix WECOM_REDIS_PREFIX={prefix!r} must not contain braces"
            )
        try:
            pool = redis.BlockingConnectionPool.from_url(
                url,
                decode_responses=True,
                socket_timeout=DEFAULT_TIMEOUT,
                socket_connect_timeout=DEFAULT_TIMEOUT,
                max_connections=MAX_CONNECTIONS,
                timeout=DEFAULT_TIMEOUT,  # waiting for a free connection of the pool
                retry=Retry(NoBackoff(), 1, supported_errors=(redis.ConnectionError,)),
            )
        except ValueError:
            raise ValueError(f"{SETTING}: invalid option in the query of {shown}") from None
        store = cls(redis.Redis(connection_pool=pool), prefix=prefix)
        try:
            store.client.ping()
        except redis.AuthenticationError:
            store.close()
            raise ValueError(f"{SETTING}: Redis at {shown} refused the credentials") from None
        except redis.RedisError as exc:
            store.close()
            reason = _scrub(str(exc) or type(exc).__name__, url)
            raise ValueError(f"{SETTING}: cannot use Redis at {shown}: {reason}") from None
        return store

    def close(self) -> None:
        self.client.close()
        self.client.connection_pool.disconnect()

    # -- jobs ---------------------------------------------------------------------------------
    def _job_key(self, key: str) -> str:
        return self._job_prefix + key

    def claim_job(
        self, key: str, kind: str, payload: str, owner: str, lease_until: float, now: float
    ) -> tuple[bool, Job]:
        keys = [self._job_key(key), self._leases, *self._state_keys]
        args = [key, kind, payload, owner, _num(lease_until), _num(now), uuid.uuid4().hex]
        reply = self._claim_job(keys=keys, args=args)
        if reply[0] == 0:
            return False, _job(key, reply[1])
        new = Job(key, kind, payload, JobState.RUNNING, owner, float(lease_until))
        new.created_at = new.updated_at = float(now)
        return True, new

    def get_job(self, key: str) -> Job | None:
        fields = self.client.hgetall(self._job_key(key))
        if not fields:
            return None
        return _job(key, [item for pair in fields.items() for item in pair])

    def update_job(
        self,
        key: str,
        *,
        expect_states: tuple[JobState, ...],
        expect_owner: str | None = None,
        state: JobState | None = None,
        owner: str | Unset | None = UNSET,
        lease_until: float | None = None,
        reply: str | Unset | None = UNSET,
        attempts: int | None = None,
        last_error: str | Unset | None = UNSET,
        now: float,
    ) -> bool:
        if not expect_states:
            return False
        changes: dict[str, str | None] = {}
        if state is not None:
            changes["state"] = JobState(state).value
        if owner is not UNSET:
            changes["owner"] = owner
        if lease_until is not None:
            changes["lease_until"] = _num(lease_until)
        if reply is not UNSET:
            changes["reply"] = reply
        if attempts is not None:
            changes["attempts"] = str(int(attempts))
        if last_error is not UNSET:
            changes["last_error"] = last_error
        sets = [(field, value) for field, value in changes.items() if value is not None]
        deletes = [field for field, value in changes.items() if value is None]
        args = [
            key,
            _num(now),
            self._finished_ttl_ms,
            uuid.uuid4().hex,
            "" if expect_owner is None else "=" + expect_owner,
            str(len(expect_states)),
            *(JobState(s).value for s in expect_states),
            str(len(sets)),
            *(item for pair in sets for item in pair),
            *deletes,
        ]
        keys = [self._job_key(key), self._leases, *self._state_keys]
        return self._update_job(keys=keys, args=args) == 1

    def renew_leases(self, owner: str, keys: list[str], lease_until: float) -> int:
        unique = list(dict.fromkeys(keys))
        renewed = 0
        for start in range(0, len(unique), _BATCH):
            chunk = unique[start : start + _BATCH]
            renewed += self._renew_leases(
                keys=[self._leases, *(self._job_key(k) for k in chunk)],
                args=[owner, _num(lease_until), *chunk],
            )
        return renewed

    def claim_expired(self, owner: str, now: float, lease_until: float, limit: int) -> list[Job]:
        if limit <= 0:
            return []
        args = [self._job_prefix, "(" + _num(now), _num(now), _num(lease_until), limit, owner]
        return _jobs(self._claim_expired(keys=[self._leases, *self._state_keys], args=args))

    def release_leases(self, owner_prefix: str, now: float) -> int:
        args = [self._job_prefix, owner_prefix, _num(now)]
        return int(self._release_leases(keys=[self._leases], args=args))

    def list_jobs(self, state: JobState, limit: int = 100) -> list[Job]:
        if limit <= 0:
            return []
        state = JobState(state)
        index = self._state_keys[lua.STATE_ORDER.index(state)]
        args = [self._job_prefix, state.value, limit, min(max(limit, 10), _BATCH)]
        return _jobs(self._list_jobs(keys=[index], args=args))

    def purge_jobs(self, finished_before: float) -> int:
        """Delete in batches, one script each, so a large purge never blocks Redis for long."""
        purged = 0
        for state in lua.PURGEABLE:
            index = self._state_keys[lua.STATE_ORDER.index(state)]
            while True:
                args = [self._job_prefix, state.value, "(" + _num(finished_before), _BATCH]
                deleted, examined = self._purge_jobs(keys=[index], args=args)
                purged += deleted
                if examined < _BATCH:
                    break
        return purged

    # -- values -------------------------------------------------------------------------------
    def _value_key(self, key: str) -> str:
        return f"{self.prefix}value:{key}"

    def get_value(self, key: str, now: float) -> str | None:
        value, expires_at = self.client.hmget(self._value_key(key), ["v", "x"])
        if value is None or (expires_at is not None and float(expires_at) <= now):
            return None
        return value

    def set_value(self, key: str, value: str, expires_at: float | None = None) -> None:
        name = self._value_key(key)
        with self.client.pipeline(transaction=True) as pipe:  # one MULTI/EXEC round trip
            pipe.delete(name)
            if expires_at is None:
                pipe.hset(name, "v", value)
            else:
                pipe.hset(name, mapping={"v": value, "x": _num(expires_at)})
                pipe.pexpireat(name, _collect_at_ms(expires_at))
            pipe.execute()

    def delete_value(self, key: str, if_value: str | None = None) -> bool:
        name = self._value_key(key)
        if if_value is None:
            return self.client.delete(name) == 1
        return self._delete_value_if(keys=[name], args=[if_value]) == 1

    def set_value_if_locked(
        self, key: str, value: str, lock_name: str, owner: str, now: float
    ) -> bool:
        keys = [self._value_key(key), self._lock_key(lock_name)]
        return self._set_value_if_locked(keys=keys, args=[value, owner, _num(now)]) == 1

    # -- locks --------------------------------------------------------------------------------
    def _lock_key(self, name: str) -> str:
        return f"{self.prefix}lock:{name}"

    def acquire_lock(self, name: str, owner: str, until: float, now: float) -> bool:
        args = [owner, _num(until), _num(now), _collect_at_ms(until)]
        return self._acquire_lock(keys=[self._lock_key(name)], args=args) == 1

    def release_lock(self, name: str, owner: str) -> bool:
        return self._release_lock(keys=[self._lock_key(name)], args=[owner]) == 1


def _collect_at_ms(expires_at: float) -> int:
    """When Redis may drop a record that expires at ``expires_at`` (caller's clock): later."""
    return int((max(expires_at, time.time()) + GRACE) * 1000)


def _describe(url: str) -> str:
    """The URL without its credentials: ``redis://host:port/db``."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or "localhost"
        port = parts.port or 6379
    except ValueError:
        scheme = url.partition("://")[0]
        raise ValueError(f"{SETTING}: not a valid {scheme}:// URL") from None
    path = parts.path.strip("/") or "0"
    if not path.isdigit():
        raise ValueError(f"{SETTING}: the database in a Redis URL is a number, got {path!r}")
    options = set(parse_qs(parts.query))
    unknown = sorted(options - URL_OPTIONS)
    if unknown:
        raise ValueError(
            f"{SETTING}: unsupported Redis URL option {unknown[0]!r}; "
            f"supported: {', '.join(sorted(URL_OPTIONS))}"
        )
    tls_only = sorted(o for o in options if o.startswith("ssl_"))
    if tls_only and parts.scheme != "rediss":
        raise ValueError(f"{SETTING}: the option {tls_only[0]!r} needs a rediss:// URL (TLS)")
    return f"{parts.scheme}://{host}:{port}/{path}"


def _scrub(text: str, url: str) -> str:
    """``text`` without the URL's password, should a library message ever repeat it."""
    password = urlsplit(url).password
    return text.replace(password, "***") if password else text
