"""The Redis store's Lua scripts: each one atomic step, refusing to act after the caller's deadline."""

from __future__ import annotations

from smartapp.store.claims import ReplayState

# Shared prelude: refuse to run after the caller's deadline (server time, milliseconds). A write script
# that runs after it (a frozen Redis working through its queue once it resumes) changes nothing.
DEADLINE_PRELUDE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
if now > tonumber(ARGV[1]) then return {-2, now} end
"""

# KEYS[1] installation hash. ARGV: 1 deadline, 2 expected version ('' = any), 3 write id, 4 now,
# 5 number of fields to set (n), then n field/value pairs, then the fields to delete.
UPDATE = DEADLINE_PRELUDE + """
local key = KEYS[1]
if redis.call('HGET', key, 'write_id') == ARGV[3] then
  -- redis-py retried a call whose first attempt did run: report it instead of applying it twice
  return {1, now, tonumber(redis.call('HGET', key, 'version'))}
end
local current = tonumber(redis.call('HGET', key, 'version') or '0')
if ARGV[2] ~= '' and tonumber(ARGV[2]) ~= current then return {0, now, current} end
local n = tonumber(ARGV[5])
if n > 0 then redis.call('HSET', key, unpack(ARGV, 6, 5 + 2 * n)) end
if #ARGV > 5 + 2 * n then redis.call('HDEL', key, unpack(ARGV, 6 + 2 * n, #ARGV)) end
redis.call('HSETNX', key, 'created_at', ARGV[4])
redis.call('HSET', key, 'updated_at', ARGV[4], 'write_id', ARGV[3])
return {1, now, redis.call('HINCRBY', key, 'version', 1)}
"""

# KEYS[1] lock or replay marker. ARGV: 1 deadline, 2 owner/nonce, 3 ttl ms. Seeing our own value
# means a retried call whose first attempt already took it.
TAKE = DEADLINE_PRELUDE + """
if redis.call('SET', KEYS[1], ARGV[2], 'NX', 'PX', ARGV[3]) then return {1, now} end
if redis.call('GET', KEYS[1]) == ARGV[2] then return {1, now} end
return {0, now}
"""

# KEYS[1] replay marker. ARGV: 1 deadline, 2 owner, 3 lease ms. 'p:<owner>' is an in-progress lease,
# anything else (including the nonce an older release wrote) is done. Seeing our own lease means a
# retried call whose first attempt already took it.
CLAIM = DEADLINE_PRELUDE + """
local value = redis.call('GET', KEYS[1])
local mine = 'p:' .. ARGV[2]
if not value then
  redis.call('SET', KEYS[1], mine, 'PX', ARGV[3])
  return {1, now}
end
if value == mine then return {1, now} end
if string.sub(value, 1, 2) == 'p:' then return {2, now} end
return {3, now}
"""
CLAIM_STATES = {1: ReplayState.CLAIMED, 2: ReplayState.IN_PROGRESS, 3: ReplayState.DONE}

# KEYS[1] the shared entry of a keyId, KEYS[2] the deployment's fetch budget (a token bucket on Redis'
# clock). ARGV: 1 deadline, 2 burst, 3 refill per millisecond. Replies 1 + the entry, 2 fetch, 3 throttled.
SHARED_KEY = DEADLINE_PRELUDE + """
local value = redis.call('GET', KEYS[1])
if value then return {1, now, value} end
local burst = tonumber(ARGV[2])
local bucket = redis.call('HMGET', KEYS[2], 'tokens', 'at')
local tokens = tonumber(bucket[1]) or burst
local at = tonumber(bucket[2]) or now
if now > at then
  tokens = math.min(burst, tokens + (now - at) * tonumber(ARGV[3]))
  at = now
end
local reply = 3
if tokens >= 1 then
  tokens = tokens - 1
  reply = 2
end
redis.call('HSET', KEYS[2], 'tokens', tostring(tokens), 'at', tostring(at))
redis.call('PEXPIRE', KEYS[2], 3600000)
return {reply, now}
"""

# KEYS[1] pending link, KEYS[2] its receipt, KEYS[3] its attempts. ARGV: 1 deadline, 2 nonce, 3 receipt
# ttl ms. GETDEL with a deadline: a link is handed out once. The receipt hands it out again to the same
# call only, for when the first attempt ran but its reply was lost and the client retried.
CONSUME = DEADLINE_PRELUDE + """
local value = redis.call('GET', KEYS[1])
if value then
  redis.call('DEL', KEYS[1], KEYS[3])
  redis.call('SET', KEYS[2], ARGV[2] .. ' ' .. value, 'PX', ARGV[3])
  return {1, now, value}
end
local receipt = redis.call('GET', KEYS[2])
local mine = ARGV[2] .. ' '
if receipt and string.sub(receipt, 1, #mine) == mine then return {1, now, string.sub(receipt, #mine + 1)} end
return {0, now}
"""

# KEYS[1] pending link, KEYS[2] its attempts (code digest -> nonce). ARGV: 1 deadline, 2 code digest,
# 3 nonce, 4 max attempts. Replies 1 + the link, 0 no link, 2 code already tried, 3 attempts used up
# (the link is ended). Our own nonce under the digest means a retried call whose first attempt ran.
ATTEMPT = DEADLINE_PRELUDE + """
local link = redis.call('GET', KEYS[1])
if not link then return {0, now} end
local tried = redis.call('HGET', KEYS[2], ARGV[2])
if tried == ARGV[3] then return {1, now, link} end
if tried then return {2, now} end
if redis.call('HLEN', KEYS[2]) >= tonumber(ARGV[4]) then
  redis.call('DEL', KEYS[1], KEYS[2])
  return {3, now}
end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
local ttl = redis.call('PTTL', KEYS[1])
if ttl > 0 then redis.call('PEXPIRE', KEYS[2], ttl) end
return {1, now, link}
"""
ATTEMPT_REFUSALS = {0: "oauth_link_not_pending", 2: "oauth_code_reused", 3: "oauth_link_attempts_exhausted"}

# KEYS[1] installation hash. ARGV: 1 deadline, then field/old/new triples. Swaps a token only if it
# is still the one that was read, and leaves the version alone: the tokens mean the same after
# rotation, so a refresh's compare-and-set that started before must still succeed.
ROTATE = DEADLINE_PRELUDE + """
local swapped = 0
for i = 2, #ARGV, 3 do
  if redis.call('HGET', KEYS[1], ARGV[i]) == ARGV[i + 1] then
    redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 2])
    swapped = swapped + 1
  end
end
return {1, now, swapped}
"""

# KEYS[1] lock or in-progress replay marker. ARGV[1] owner. Only the holder may delete it.
RELEASE_LOCK = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# What a write script replies (its first value) when it ran past its deadline and changed nothing.
STALE = -2
