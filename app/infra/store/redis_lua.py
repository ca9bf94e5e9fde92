"""The Lua scripts of :mod:`app.infra.store.redis`, one per operation that reads and then writes.

A script runs alone on the Redis server, so each one is a transaction: nothing can change a job
between the script's check and its write. Every script touches only keys of one hash slot (see
the key design in :mod:`app.infra.store.redis`).

Numbers are passed in and stored as the decimal text Python wrote (``repr(float)``) and never
re-formatted in Lua, whose ``tostring`` keeps only 14 digits; Lua converts them with
``tonumber`` only to compare them.

The job-state tables at the top of the job scripts are generated from :class:`JobState`, so a
new state cannot be forgotten here.
"""

from __future__ import annotations

from .base import ACTIVE_STATES, FINAL_STATES, JobState

#: The order of the per-state sorted sets in KEYS, after the fixed keys of each script.
STATE_ORDER: tuple[JobState, ...] = tuple(JobState)
#: Final states whose jobs expire and are purged (dead letters stay until a person acts).
PURGEABLE: tuple[JobState, ...] = tuple(
    s for s in STATE_ORDER if s in FINAL_STATES and s is not JobState.DEAD
)


def _active_table() -> str:
    """Lua: ``active[state]`` is true for the states that hold a lease."""
    active = ", ".join(f"[{s.value!r}] = true" for s in ACTIVE_STATES)
    return f"local active = {{{active}}}\n"


def _state_tables(first_state_key: int) -> str:
    """Lua: ``active``, and ``slot[state]``: the KEYS index of that state's sorted set."""
    slots = ", ".join(f"[{s.value!r}] = {first_state_key + i}" for i, s in enumerate(STATE_ORDER))
    return _active_table() + f"local slot = {{{slots}}}\n"


# Shared by the job scripts: keep the indexes of one job right after its fields changed.
#   leases: members are the non-final jobs, scored by lease_until;
#   state sets: each job is in the set of its state, scored by updated_at;
#   a final job's hash expires (ttl_ms, not for dead letters), an active one's never does.
_REINDEX = """
local function reindex(hash, member, old_state, leases_key, ttl_ms)
  local f = redis.call('HMGET', hash, 'state', 'lease_until', 'updated_at')
  if old_state and old_state ~= f[1] then
    redis.call('ZREM', KEYS[slot[old_state]], member)
  end
  redis.call('ZADD', KEYS[slot[f[1]]], f[3], member)
  if active[f[1]] then
    redis.call('ZADD', leases_key, f[2], member)
    redis.call('PERSIST', hash)
  else
    redis.call('ZREM', leases_key, member)
    if f[1] == 'dead' then
      redis.call('PERSIST', hash)
    else
      redis.call('PEXPIRE', hash, ttl_ms)
    end
  end
end
"""

# KEYS: job hash, leases, then one sorted set per state (STATE_ORDER).
# ARGV: member, kind, payload, owner, lease_until, now, claim_id.
# Returns {1} when created, {0, fields} when the job exists. A retry of the same call (same
# claim_id, after a lost reply) reports the creation again instead of "exists".
CLAIM_JOB = (
    _state_tables(3)
    + """
local existing = redis.call('HGETALL', KEYS[1])
if #existing > 0 then
  if redis.call('HGET', KEYS[1], 'claim_id') == ARGV[7] then return {1} end
  return {0, existing}
end
-- a finished job with this key may have expired by TTL while its index entry stayed
for state, index in pairs(slot) do
  if state ~= 'running' then redis.call('ZREM', KEYS[index], ARGV[1]) end
end
redis.call('HSET', KEYS[1], 'kind', ARGV[2], 'payload', ARGV[3], 'state', 'running',
  'owner', ARGV[4], 'lease_until', ARGV[5], 'attempts', '0',
  'created_at', ARGV[6], 'updated_at', ARGV[6], 'claim_id', ARGV[7])
redis.call('ZADD', KEYS[2], ARGV[5], ARGV[1])
redis.call('ZADD', KEYS[slot['running']], ARGV[6], ARGV[1])
return {1}
"""
)

# KEYS: job hash, leases, then one sorted set per state.
# ARGV: member, now, ttl_ms, op_id, expect_owner ('' = any, else '=' .. owner),
#       n_states, states..., n_sets, (field, value) pairs to set..., then the fields to delete
#       (set to None).
# Returns 1 when it changed the job. A retry of the same call (same op_id) returns 1 again.
UPDATE_JOB = (
    _state_tables(3)
    + _REINDEX
    + """
local f = redis.call('HMGET', KEYS[1], 'state', 'owner', 'op_id')
if not f[1] then return 0 end
if f[3] == ARGV[4] then return 1 end
local n = tonumber(ARGV[6])
local matched = false
for i = 7, 6 + n do
  if ARGV[i] == f[1] then matched = true end
end
if not matched then return 0 end
if ARGV[5] ~= '' and (not f[2] or '=' .. f[2] ~= ARGV[5]) then return 0 end
local sets = tonumber(ARGV[7 + n])
for i = 8 + n, 7 + n + 2 * sets, 2 do
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
for i = 8 + n + 2 * sets, #ARGV do
  redis.call('HDEL', KEYS[1], ARGV[i])
end
redis.call('HSET', KEYS[1], 'updated_at', ARGV[2], 'op_id', ARGV[4])
reindex(KEYS[1], ARGV[1], f[1], KEYS[2], ARGV[3])
return 1
"""
)

# KEYS: leases, then the job hashes. ARGV: owner, lease_until, then the members (same order).
RENEW_LEASES = (
    _active_table()
    + """
local renewed = 0
for i = 2, #KEYS do
  local f = redis.call('HMGET', KEYS[i], 'owner', 'state')
  if f[1] == ARGV[1] and f[2] and active[f[2]] then
    redis.call('HSET', KEYS[i], 'lease_until', ARGV[2])
    redis.call('ZADD', KEYS[1], ARGV[2], ARGV[i + 1])
    renewed = renewed + 1
  end
end
return renewed
"""
)

# KEYS: leases, then one sorted set per state.
# ARGV: job hash prefix, '(' .. now, now, lease_until, limit, owner.
# The job hashes are named from the leases' members: they carry the same hash tag, so they are
# in the same slot as the declared keys.
# Returns {member, fields, member, fields, ...} in claim order.
CLAIM_EXPIRED = (
    _state_tables(2)
    + """
local claimed, seen = {}, {}
local wanted = tonumber(ARGV[5])
local taken = 0
repeat
  -- Another round only after dropping stale entries (whose job is gone or final): each round
  -- removes some for good, so the loop ends; seen keeps a job claimed once (even when the new
  -- lease is still before now).
  local stale = 0
  local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[2], 'LIMIT', 0, wanted)
  for _, member in ipairs(due) do
    local hash = ARGV[1] .. member
    local state = redis.call('HGET', hash, 'state')
    if not (state and active[state]) then
      redis.call('ZREM', KEYS[1], member)
      stale = stale + 1
    elseif not seen[member] and taken < wanted then
      seen[member] = true
      redis.call('HSET', hash, 'owner', ARGV[6], 'lease_until', ARGV[4], 'updated_at', ARGV[3])
      redis.call('ZADD', KEYS[1], ARGV[4], member)
      redis.call('ZADD', KEYS[slot[state]], ARGV[3], member)
      claimed[#claimed + 1] = member
      claimed[#claimed + 1] = redis.call('HGETALL', hash)
      taken = taken + 1
    end
  end
until stale == 0 or taken >= wanted
return claimed
"""
)

# KEYS: leases. ARGV: job hash prefix, owner prefix, now.
# Ends now the future leases of active jobs whose owner starts with the owner prefix (a worker
# known to be dead). Only jobs whose lease is still running are looked at: the work in hand.
RELEASE_LEASES = (
    _active_table()
    + """
local released = 0
local wanted = ARGV[2]
if wanted == '' then return 0 end
for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[1], '(' .. ARGV[3], '+inf')) do
  local f = redis.call('HMGET', ARGV[1] .. member, 'owner', 'state')
  if f[1] and f[2] and active[f[2]] and string.sub(f[1], 1, #wanted) == wanted then
    redis.call('HSET', ARGV[1] .. member, 'lease_until', ARGV[3])
    redis.call('ZADD', KEYS[1], ARGV[3], member)
    released = released + 1
  end
end
return released
"""
)

# KEYS: the state's sorted set. ARGV: job hash prefix, state, limit, batch.
# Returns {member, fields, ...}, least recently updated first; drops entries whose job expired.
LIST_JOBS = """
local found = {}
local wanted = tonumber(ARGV[3])
local start = 0
while #found < 2 * wanted do
  local batch = redis.call('ZRANGE', KEYS[1], start, start + tonumber(ARGV[4]) - 1)
  if #batch == 0 then break end
  local stale = 0
  for _, member in ipairs(batch) do
    local fields = redis.call('HGETALL', ARGV[1] .. member)
    if #fields == 0 or redis.call('HGET', ARGV[1] .. member, 'state') ~= ARGV[2] then
      redis.call('ZREM', KEYS[1], member)
      stale = stale + 1
    elseif #found < 2 * wanted then
      found[#found + 1] = member
      found[#found + 1] = fields
    end
  end
  start = start + #batch - stale
end
return found
"""

# KEYS: the state's sorted set. ARGV: job hash prefix, state, '(' .. finished_before, batch.
# Deletes up to one batch of jobs of that state last updated before finished_before.
# Returns {deleted, examined}: the caller repeats while a whole batch was examined.
PURGE_JOBS = """
local due = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[3], 'LIMIT', 0, tonumber(ARGV[4]))
local deleted = 0
for _, member in ipairs(due) do
  local hash = ARGV[1] .. member
  if redis.call('HGET', hash, 'state') == ARGV[2] then  -- else a stale entry: only drop it
    deleted = deleted + redis.call('DEL', hash)
  end
  redis.call('ZREM', KEYS[1], member)
end
return {deleted, #due}
"""

# KEYS: the value's hash. ARGV: the expected value. Returns 1 when it deleted the value.
DELETE_VALUE_IF = """
if redis.call('HGET', KEYS[1], 'v') == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""

# KEYS: the value's hash, the lock's hash. ARGV: value, owner, now. Writes the value (never
# expiring) only while owner holds the lock unexpired; returns 1 when it did. Two keys in two
# slots: fine on one Redis server (the supported set-up), CROSSSLOT on a cluster.
SET_VALUE_IF_LOCKED = """
local f = redis.call('HMGET', KEYS[2], 'owner', 'until')
if f[1] ~= ARGV[2] or tonumber(f[2]) <= tonumber(ARGV[3]) then
  return 0
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'v', ARGV[1])
return 1
"""

# KEYS: the lock's hash. ARGV: owner, until, now, collect_at_ms (when Redis drops the record).
ACQUIRE_LOCK = """
local f = redis.call('HMGET', KEYS[1], 'owner', 'until')
if f[1] and f[1] ~= ARGV[1] and tonumber(f[2]) > tonumber(ARGV[3]) then
  return 0
end
redis.call('HSET', KEYS[1], 'owner', ARGV[1], 'until', ARGV[2])
redis.call('PEXPIREAT', KEYS[1], ARGV[4])
return 1
"""

# KEYS: the lock's hash. ARGV: owner. Returns 1 when it released the lock.
RELEASE_LOCK = """
if redis.call('HGET', KEYS[1], 'owner') == ARGV[1] then
  return redis.call('DEL', KEYS[1])
end
return 0
"""
