//! The Lua scripts of the Redis store. Each one is a single atomic step on the server that
//! compares and stores: Redis never parses or rebuilds a JSON value (no cjson), it only keeps
//! the text the core made, splits off the item's version and expiry in front of it, and
//! records the change event in the same step.
//!
//! An item is stored as `<version>:<expires_at_ms>:<json>` in the group's hash. Time is the
//! server's (`TIME`), so every process agrees on what has expired. Keys (see the README's
//! layout): `KEYS[1]` the group's items hash, `KEYS[2]` its insertion order (a sorted set
//! scored by version), `KEYS[3]` its version counter, `KEYS[4]` the sorted set of non-empty
//! groups, `KEYS[5]` the expiry index (scored by expiry time), `KEYS[6]` the event stream.

/// Helpers every script starts with.
const PRELUDE: &str = r#"
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function parse(p)
  local a = string.find(p, ':', 1, true)
  local b = string.find(p, ':', a + 1, true)
  return tonumber(string.sub(p, 1, a - 1)), tonumber(string.sub(p, a + 1, b - 1)), string.sub(p, b + 1)
end
local function expired(e, now)
  return e ~= 0 and e <= now
end
local function member(g, k)
  return string.len(g) .. ':' .. g .. k
end
-- One XADD per shape of event, written out: building the arguments in a table and calling
-- redis.call(unpack(args)) cost a set's script about a fifth of its time. A change with a new
-- value has no reason; a deletion always has its old value.
local function emit(stream, maxlen, t, g, k, old, new, reason)
  if new then
    if old then
      return redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', 't', t, 'g', g, 'k', k, 'o', old, 'n', new)
    end
    return redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', 't', t, 'g', g, 'k', k, 'n', new)
  end
  if reason then
    return redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', 't', t, 'g', g, 'k', k, 'o', old, 'r', reason)
  end
  return redis.call('XADD', stream, 'MAXLEN', '~', maxlen, '*', 't', t, 'g', g, 'k', k, 'o', old)
end
-- Removes an item whose payload is `p`, with its event; leaves the group in the groups set
-- only while it still has items. Returns its version, its json and the event's stream id.
local function remove(keys, maxlen, g, k, p, reason)
  local v, e, j = parse(p)
  redis.call('HDEL', keys[1], k)
  redis.call('ZREM', keys[2], k)
  if e ~= 0 then redis.call('ZREM', keys[5], member(g, k)) end
  if redis.call('HLEN', keys[1]) == 0 then redis.call('ZREM', keys[4], g) end
  local id = emit(keys[6], maxlen, 'd', g, k, j, false, reason)
  return v, j, id
end
-- Stores `json` under `k` with expiry `e` (a new key goes to the end); returns the new version
-- and the event's stream id. A new counter starts at `seed` (see `version_seed`).
local function store(keys, maxlen, g, k, json, e, old_e, old_json, seed)
  local v = redis.call('INCR', keys[3])
  if v == 1 then v = redis.call('INCRBY', keys[3], seed) end
  redis.call('HSET', keys[1], k, v .. ':' .. e .. ':' .. json)
  if not old_json then
    redis.call('ZADD', keys[2], v, k)
    redis.call('ZADD', keys[4], 0, g)
  end
  if e ~= 0 then
    redis.call('ZADD', keys[5], e, member(g, k))
  elseif old_e ~= 0 then
    redis.call('ZREM', keys[5], member(g, k))
  end
  local id = emit(keys[6], maxlen, old_json and 'u' or 'c', g, k, old_json, json, false)
  return v, id
end
"#;

/// `set`: ARGV group, key, json, ttl_ms (0: never), stream maxlen, version seed. Returns
/// `{old_json|nil, old_version, version, event_id}`. An expired old item is removed first, with its
/// event. The server's clock is read only when an expiry is involved: each command a script
/// runs costs Redis about as much as a whole `HGET` from a client.
const SET: &str = r#"
local g, k, json, ttl, maxlen, seed = ARGV[1], ARGV[2], ARGV[3], tonumber(ARGV[4]), ARGV[5], tonumber(ARGV[6])
local now = false
local p = redis.call('HGET', KEYS[1], k)
local old_v, old_e, old_j = 0, 0, false
if p then
  old_v, old_e, old_j = parse(p)
  if old_e ~= 0 then
    now = now_ms()
    if expired(old_e, now) then
      remove(KEYS, maxlen, g, k, p, 'expired')
      old_v, old_e, old_j = 0, 0, false
    end
  end
end
local e = 0
if ttl > 0 then e = (now or now_ms()) + ttl end
local v, id = store(KEYS, maxlen, g, k, json, e, old_e, old_j, seed)
return {old_j, old_v, v, id}
"#;

/// `update`'s compare-and-set: ARGV group, key, expected version (0: absent), new json,
/// default ttl_ms (0: none), stream maxlen, version seed. Stores only when the live item still has the
/// expected version: returns `{1, old_json|nil, old_version, version, event_id}`; otherwise
/// `{0, current_payload|nil}` for the caller to apply its ops again. An existing item keeps its
/// expiry; a new one gets the default TTL. Like `SET`, it reads the server's clock only when an
/// expiry is involved.
const COMPARE_AND_SET: &str = r#"
local g, k, expected, json, ttl, maxlen, seed = ARGV[1], ARGV[2], tonumber(ARGV[3]), ARGV[4], tonumber(ARGV[5]), ARGV[6], tonumber(ARGV[7])
local now = false
local p = redis.call('HGET', KEYS[1], k)
local v, e, j = 0, 0, false
local stale = false
if p then
  v, e, j = parse(p)
  if e ~= 0 then
    now = now_ms()
    if expired(e, now) then
      stale = p
      v, e, j = 0, 0, false
    end
  end
end
if v ~= expected then
  if stale then return {0, false} end
  return {0, p}
end
if stale then remove(KEYS, maxlen, g, k, stale, 'expired') end
local new_e = e
if not j and ttl > 0 then new_e = (now or now_ms()) + ttl end
local new_v, id = store(KEYS, maxlen, g, k, json, new_e, e, j, seed)
return {1, j, v, new_v, id}
"#;

/// `get` of an item the caller could not judge by its bounds on the server's clock (one near its
/// expiry): ARGV key. Returns the live item's payload, or nil. Other gets are a plain `HGET`.
const GET: &str = r#"
local p = redis.call('HGET', KEYS[1], ARGV[1])
if not p then return false end
local v, e = parse(p)
if expired(e, now_ms()) then return false end
return p
"#;

/// `delete`: ARGV group, key, stream maxlen. Returns `{old_json, old_version, event_id}` or nil; an
/// expired item is removed with an `expired` event and counts as absent.
const DELETE: &str = r#"
local g, k, maxlen = ARGV[1], ARGV[2], ARGV[3]
local p = redis.call('HGET', KEYS[1], k)
if not p then return false end
local v, e = parse(p)
if expired(e, now_ms()) then
  remove(KEYS, maxlen, g, k, p, 'expired')
  return false
end
local old_v, old_j, id = remove(KEYS, maxlen, g, k, p, false)
return {old_j, old_v, id}
"#;

/// `clear`: ARGV group, stream maxlen. Removes every item with a `cleared` event (`expired`
/// for items already expired); returns `{live items removed, last event_id|nil}`.
const CLEAR: &str = r#"
local g, maxlen = ARGV[1], ARGV[2]
local now = now_ms()
local keys = redis.call('ZRANGE', KEYS[2], 0, -1)
local live = 0
local id = false
for _, k in ipairs(keys) do
  local p = redis.call('HGET', KEYS[1], k)
  if p then
    local v, e, j = parse(p)
    local reason = 'cleared'
    if expired(e, now) then reason = 'expired' else live = live + 1 end
    if e ~= 0 then redis.call('ZREM', KEYS[5], member(g, k)) end
    id = emit(KEYS[6], maxlen, 'd', g, k, j, false, reason)
  end
end
redis.call('DEL', KEYS[1], KEYS[2])
redis.call('ZREM', KEYS[4], g)
return {live, id}
"#;

/// A group's live items in insertion order: `{key, payload, key, payload, ...}`.
const GROUP: &str = r#"
local now = now_ms()
local keys = redis.call('ZRANGE', KEYS[2], 0, -1)
local out = {}
-- In chunks: unpack takes at most a few thousand values.
for first = 1, #keys, 1000 do
  local chunk = {}
  for i = first, math.min(first + 999, #keys) do chunk[#chunk + 1] = keys[i] end
  local values = redis.call('HMGET', KEYS[1], unpack(chunk))
  for i, k in ipairs(chunk) do
    local p = values[i]
    if p then
      local v, e = parse(p)
      if not expired(e, now) then
        out[#out + 1] = k
        out[#out + 1] = p
      end
    end
  end
end
return out
"#;

/// The sweep: ARGV prefix, stream maxlen, limit. Removes up to `limit` items whose expiry
/// has passed, each with its `expired` event, exactly once whichever process runs it; returns
/// `{how many, the server's time in ms}`. `KEYS[1]` the groups set, `KEYS[2]` the expiry index, `KEYS[3]` the stream (the
/// items' own keys follow from the prefix and the group).
const SWEEP: &str = r#"
local prefix, maxlen, limit = ARGV[1], ARGV[2], tonumber(ARGV[3])
local now = now_ms()
local due = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'WITHSCORES', 'LIMIT', 0, limit)
local removed = 0
for i = 1, #due, 2 do
  local m, score = due[i], tonumber(due[i + 1])
  local colon = string.find(m, ':', 1, true)
  local n = tonumber(string.sub(m, 1, colon - 1))
  local g = string.sub(m, colon + 1, colon + n)
  local k = string.sub(m, colon + n + 1)
  local items = prefix .. '{' .. g .. '}:i'
  local keys = {items, prefix .. '{' .. g .. '}:o', false, KEYS[1], KEYS[2], KEYS[3]}
  local p = redis.call('HGET', items, k)
  if p then
    local v, e = parse(p)
    if e == score then
      remove(keys, maxlen, g, k, p, 'expired')
      removed = removed + 1
    else
      redis.call('ZREM', KEYS[2], m)
    end
  else
    redis.call('ZREM', KEYS[2], m)
  end
end
return {removed, now}
"#;

/// The names of the non-empty groups, after sweeping what is due (bounded, like [`SWEEP`]).
const GROUPS: &str = r#"
return redis.call('ZRANGE', KEYS[1], 0, -1)
"#;

/// The scripts, each with the prelude, ready to invoke.
pub struct Scripts {
    pub set: redis::Script,
    pub compare_and_set: redis::Script,
    pub get: redis::Script,
    pub delete: redis::Script,
    pub clear: redis::Script,
    pub group: redis::Script,
    pub sweep: redis::Script,
    pub groups: redis::Script,
}

impl Scripts {
    pub fn new() -> Scripts {
        let with_prelude = |body: &str| redis::Script::new(&format!("{PRELUDE}{body}"));
        Scripts {
            set: with_prelude(SET),
            compare_and_set: with_prelude(COMPARE_AND_SET),
            get: with_prelude(GET),
            delete: with_prelude(DELETE),
            clear: with_prelude(CLEAR),
            group: with_prelude(GROUP),
            sweep: with_prelude(SWEEP),
            groups: with_prelude(GROUPS),
        }
    }
}
