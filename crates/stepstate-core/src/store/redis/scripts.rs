//! The Lua scripts of the Redis store. Each one is a single atomic step on the server that
//! compares and stores: Redis never parses or rebuilds a JSON value (no cjson), it only keeps
//! the text the core made, splits off the item's version and expiry in front of it, and
//! records the change event in the same step.
//!
//! An item is stored as `<version>:<expires_at_ms>:<json>` in the group's hash. Time is the
//! server's (`TIME`), so every process agrees on what has expired. The scripts read only the
//! version and expiry in front, and hand on an item's payload whole (in events and replies,
//! where the reader splits it): each string made in Lua costs Redis a pass over all of its
//! bytes, so taking the JSON out of a payload would cost a pass over the value each time. The
//! helpers take an item's keys (see the README's layout) as a table: `keys[1]` the group's
//! items hash, `keys[2]` its insertion order (a sorted set scored by version), `keys[3]` its
//! version counter, `keys[4]` the sorted set of non-empty groups, `keys[5]` the expiry index
//! (scored by expiry time), `keys[6]` the event stream.

/// Helpers every script starts with.
const PRELUDE: &str = r#"
-- Globals are table lookups in Lua 5.1, locals are not: the functions every write calls are
-- taken once.
local call, find, sub, format, tonumber = redis.call, string.find, string.sub, string.format, tonumber
local function now_ms()
  local t = call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
-- The version and expiry of a payload, as the strings stored ('0': never expires). Versions
-- stay strings (compared as the decimal text both sides write) and an expiry becomes a number
-- only to be compared with the clock: Lua turns a number into text with printf's %.14g and
-- back with strtod, which took about a fifteenth of a write's time in Redis.
local function head(p)
  local a = find(p, ':', 1, true)
  local b = find(p, ':', a + 1, true)
  return sub(p, 1, a - 1), sub(p, a + 1, b - 1)
end
local function expired(e, now)
  return e ~= '0' and tonumber(e) <= now
end
local function member(g, k)
  return format('%d:', #g) .. g .. k
end
-- The events of a script call, recorded together in one stream entry when it ends (`commit`):
-- one XADD per event cost Redis about a tenth of a `set`'s instructions more, in its command
-- and the arguments and reply each `redis.call` converts. The entry holds the events one
-- after another, each a kind and its fields by position (see the README's layout): `c` group
-- key new, `u` group key old new, `d` (deleted), `e` (expired) and `x` (cleared) group key
-- old, where old and new are payloads as stored; an empty string pads the entry to an even
-- number of values, as a stream entry must have. A call with thousands of events (a `clear`)
-- records them in several entries.
local ev, ev_values, ev_count, ev_stream, ev_maxlen = {}, 0, 0, false, 0
local last_event = false
-- Records the events emitted since the last commit as one entry; its id is kept in
-- `last_event`. The stream keeps about `maxlen` events, counted in `<stream>:n` (every event
-- recorded) and trimmed by `<stream>:m`, a sorted set of entry ids scored by that count, one
-- mark per `maxlen / 16` events: as each is made, the entries before the newest mark at least
-- `maxlen` events old go (and the marks before it), so the stream holds between `maxlen` and
-- about `maxlen` plus two sixteenths of it and a few calls' events.
local function commit()
  if ev_values == 0 then return end
  if ev_values % 2 == 1 then
    ev_values = ev_values + 1
    ev[ev_values] = ''
  end
  last_event = call('XADD', ev_stream, '*', unpack(ev, 1, ev_values))
  local total = call('INCRBY', ev_stream .. ':n', ev_count)
  local maxlen = tonumber(ev_maxlen)
  local step = math.max(1, math.floor(maxlen / 16))
  if math.floor(total / step) > math.floor((total - ev_count) / step) then
    local marks = ev_stream .. ':m'
    call('ZADD', marks, total, last_event)
    local cut = call('ZREVRANGEBYSCORE', marks, total - maxlen, '-inf', 'WITHSCORES', 'LIMIT', 0, 1)
    if cut[1] then
      call('XTRIM', ev_stream, 'MINID', cut[1])
      call('ZREMRANGEBYSCORE', marks, '-inf', '(' .. cut[2])
    end
  end
  ev_values, ev_count = 0, 0
end
local function emit(stream, maxlen, t, g, k, old, new, reason)
  ev_stream, ev_maxlen = stream, maxlen
  local n = ev_values
  if t == 'u' then
    ev[n + 1], ev[n + 2], ev[n + 3], ev[n + 4], ev[n + 5] = 'u', g, k, old, new
    n = n + 5
  elseif t == 'c' then
    ev[n + 1], ev[n + 2], ev[n + 3], ev[n + 4] = 'c', g, k, new
    n = n + 4
  else
    t = (reason == 'expired' and 'e') or (reason == 'cleared' and 'x') or 'd'
    ev[n + 1], ev[n + 2], ev[n + 3], ev[n + 4] = t, g, k, old
    n = n + 4
  end
  ev_values, ev_count = n, ev_count + 1
  if n >= 4000 then commit() end
end
-- The groups this script call has put in the groups set (or found there): a batch of new
-- items of one group adds the group once, not once per item. A group that loses its last item
-- leaves the set and this table together.
local listed = {}
local function ungroup(keys, g)
  call('ZREM', keys[4], g)
  listed[g] = nil
end
-- Removes an item whose payload is `p`, with its event; leaves the group in the groups set
-- only while it still has items. Returns its version.
local function remove(keys, maxlen, g, k, p, reason)
  local v, e = head(p)
  call('HDEL', keys[1], k)
  call('ZREM', keys[2], k)
  if e ~= '0' then call('ZREM', keys[5], member(g, k)) end
  if call('HLEN', keys[1]) == 0 then ungroup(keys, g) end
  emit(keys[6], maxlen, 'd', g, k, p, false, reason)
  return v
end
-- Stores `json` at version `v` under `k` with expiry `e` (a string, '0': never) over the
-- payload `old` (false: none) whose expiry was `old_e`; a new key goes to the end.
local function store(keys, maxlen, g, k, json, e, old_e, old, v)
  local p = format('%d:%s:%s', v, e, json)
  call('HSET', keys[1], k, p)
  if not old then
    call('ZADD', keys[2], format('%d', v), k)
    if not listed[g] then
      call('ZADD', keys[4], 0, g)
      listed[g] = true
    end
  end
  if e ~= '0' then
    call('ZADD', keys[5], e, member(g, k))
  elseif old_e ~= '0' then
    call('ZREM', keys[5], member(g, k))
  end
  emit(keys[6], maxlen, old and 'u' or 'c', g, k, old, p, false)
end
"#;

/// Every write: the writes of one process that wait at the same time go to Redis together, in
/// one call of this script, which runs each in turn exactly as if it had come alone (so a
/// batch is as atomic as each of its writes, and more). One call per batch instead of one per
/// write spares Redis the cost of starting a script for each, and the process a command each.
///
/// `KEYS[1]` the groups set, `KEYS[2]` the expiry index, `KEYS[3]` the stream (a group's own
/// keys follow from the prefix and the group, as in the sweep). ARGV: prefix, stream maxlen,
/// version seed, then six for each write: its kind, group, key and three arguments:
///
/// - `s` (set) json, ttl_ms (0: never), known version (0: none): answers `old_payload|nil,
///   old_version, version`, with `1` for the old payload when its version is the known one
///   (the caller holds that value: it need not travel back). An expired old item is removed
///   first, with its event.
/// - `c` (`update`'s compare-and-set) expected version (0: absent), json, default ttl_ms
///   (0: none): stores only when the live item still has the expected version and answers
///   `1, old_version, version` (the old json is the one the caller applied its ops to);
///   otherwise `0, current_payload|nil, 0` for the caller to apply its ops again. An existing
///   item keeps its expiry; a new one gets the default TTL.
/// - `d` (delete): answers `old_payload|nil, old_version, 0`; an expired item is removed with
///   an `expired` event and counts as absent.
/// - `x` (clear): removes every item with a `cleared` event (`expired` for items already
///   expired); answers `live items removed, 0, 0`.
///
/// The reply is one flat array: the writes' answers, three values each, in order, and then
/// the stream id of the batch's last event (nil: none). Flat, because Redis looks into every
/// table a script returns for the fields of an error or a status, which cost about a twentieth
/// of a set's time in Redis with a table per write. Every event of a batch is committed before
/// any of its writes is answered, so that id is where a listener made after any of them
/// starts. The server's clock is read only when an expiry is involved, and at most once per
/// batch: each command a script runs costs Redis about as much as a whole `HGET` from a
/// client.
const WRITE: &str = r#"
local prefix, maxlen, seed = ARGV[1], ARGV[2], tonumber(ARGV[3])

-- A group's versions come from its counter (`keys[3]`), taken for all of the batch's writes
-- of the group with one INCRBY (`writes_of`, counted first) and handed out in order. A new
-- counter starts at `seed` (see `version_seed`). A write that stores nothing leaves a gap.
local writes_of, versions = {}, {}
for i = 4, #ARGV, 6 do
  local kind, g = ARGV[i], ARGV[i + 1]
  if kind == 's' or kind == 'c' then writes_of[g] = (writes_of[g] or 0) + 1 end
end
local function next_version(keys, g)
  local range = versions[g]
  if range == nil or range[1] > range[2] then
    local n = writes_of[g] or 1
    writes_of[g] = 1
    local top = call('INCRBY', keys[3], n)
    if top == n then top = call('INCRBY', keys[3], seed) end
    range = {top - n + 1, top}
    versions[g] = range
  end
  local v = range[1]
  range[1] = v + 1
  return v
end
local clock = false
local function now()
  if not clock then clock = now_ms() end
  return clock
end
-- Whether an expiry (as stored) has passed, reading the clock only for an item that expires.
local function gone(e)
  return e ~= '0' and expired(e, now())
end

local function set(keys, g, k, json, ttl, known)
  local p = call('HGET', keys[1], k)
  local old_v, old_e = '0', '0'
  if p then
    old_v, old_e = head(p)
    if gone(old_e) then
      remove(keys, maxlen, g, k, p, 'expired')
      old_v, old_e, p = '0', '0', false
    end
  end
  local e = '0'
  if ttl ~= '0' then e = format('%d', now() + tonumber(ttl)) end
  local v = next_version(keys, g)
  store(keys, maxlen, g, k, json, e, old_e, p, v)
  if p and old_v == known then return 1, old_v, v end
  return p, old_v, v
end

local function compare_and_set(keys, g, k, expected, json, ttl)
  local p = call('HGET', keys[1], k)
  local v, e = '0', '0'
  local stale = false
  if p then
    v, e = head(p)
    if gone(e) then
      stale, p = p, false
      v, e = '0', '0'
    end
  end
  if v ~= expected then
    return 0, p, 0
  end
  if stale then remove(keys, maxlen, g, k, stale, 'expired') end
  local new_e = e
  if not p and ttl ~= '0' then new_e = format('%d', now() + tonumber(ttl)) end
  local new_v = next_version(keys, g)
  store(keys, maxlen, g, k, json, new_e, e, p, new_v)
  return 1, v, new_v
end

local function delete(keys, g, k)
  local p = call('HGET', keys[1], k)
  if not p then return false, 0, 0 end
  local v, e = head(p)
  if gone(e) then
    remove(keys, maxlen, g, k, p, 'expired')
    return false, 0, 0
  end
  local old_v = remove(keys, maxlen, g, k, p, false)
  return p, old_v, 0
end

local function clear(keys, g)
  local t = now()
  local members = call('ZRANGE', keys[2], 0, -1)
  local live = 0
  for _, k in ipairs(members) do
    local p = call('HGET', keys[1], k)
    if p then
      local v, e = head(p)
      local reason = 'cleared'
      if expired(e, t) then reason = 'expired' else live = live + 1 end
      if e ~= '0' then call('ZREM', keys[5], member(g, k)) end
      emit(keys[6], maxlen, 'd', g, k, p, false, reason)
    end
  end
  call('DEL', keys[1], keys[2])
  ungroup(keys, g)
  return live, 0, 0
end

local out, n = {}, 0
local keys_of = {} -- each group's keys, made once per batch
for i = 4, #ARGV, 6 do
  local kind, g, k = ARGV[i], ARGV[i + 1], ARGV[i + 2]
  local keys = keys_of[g]
  if not keys then
    local base = prefix .. '{' .. g .. '}:'
    keys = {base .. 'i', base .. 'o', base .. 'n', KEYS[1], KEYS[2], KEYS[3]}
    keys_of[g] = keys
  end
  local a, b, c
  if kind == 's' then
    a, b, c = set(keys, g, k, ARGV[i + 3], ARGV[i + 4], ARGV[i + 5])
  elseif kind == 'c' then
    a, b, c = compare_and_set(keys, g, k, ARGV[i + 3], ARGV[i + 4], ARGV[i + 5])
  elseif kind == 'd' then
    a, b, c = delete(keys, g, k)
  else
    a, b, c = clear(keys, g)
  end
  out[n + 1], out[n + 2], out[n + 3] = a, b, c
  n = n + 3
end
commit()
out[n + 1] = last_event
return out
"#;

/// A group's live items in insertion order: `{key, payload, key, payload, ...}`.
const GROUP: &str = r#"
local now = now_ms()
local keys = call('ZRANGE', KEYS[2], 0, -1)
local out = {}
-- In chunks: unpack takes at most a few thousand values.
for first = 1, #keys, 1000 do
  local chunk = {}
  for i = first, math.min(first + 999, #keys) do chunk[#chunk + 1] = keys[i] end
  local values = call('HMGET', KEYS[1], unpack(chunk))
  for i, k in ipairs(chunk) do
    local p = values[i]
    if p then
      local v, e = head(p)
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
local due = call('ZRANGEBYSCORE', KEYS[2], '-inf', now, 'WITHSCORES', 'LIMIT', 0, limit)
local removed = 0
for i = 1, #due, 2 do
  local m, score = due[i], tonumber(due[i + 1])
  local colon = find(m, ':', 1, true)
  local n = tonumber(sub(m, 1, colon - 1))
  local g = sub(m, colon + 1, colon + n)
  local k = sub(m, colon + n + 1)
  local items = prefix .. '{' .. g .. '}:i'
  local keys = {items, prefix .. '{' .. g .. '}:o', false, KEYS[1], KEYS[2], KEYS[3]}
  local p = call('HGET', items, k)
  if p then
    local v, e = head(p)
    if tonumber(e) == score then
      remove(keys, maxlen, g, k, p, 'expired')
      removed = removed + 1
    else
      call('ZREM', KEYS[2], m)
    end
  else
    call('ZREM', KEYS[2], m)
  end
end
commit()
return {removed, now}
"#;

/// The names of the non-empty groups, after sweeping what is due (bounded, like [`SWEEP`]).
const GROUPS: &str = r#"
return call('ZRANGE', KEYS[1], 0, -1)
"#;

/// The scripts, each with the prelude, ready to invoke.
pub struct Scripts {
    pub write: redis::Script,
    pub group: redis::Script,
    pub sweep: redis::Script,
    pub groups: redis::Script,
}

impl Scripts {
    pub fn new() -> Scripts {
        let with_prelude = |body: &str| redis::Script::new(&format!("{PRELUDE}{body}"));
        Scripts {
            write: with_prelude(WRITE),
            group: with_prelude(GROUP),
            sweep: with_prelude(SWEEP),
            groups: with_prelude(GROUPS),
        }
    }
}
