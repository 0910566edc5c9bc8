'use strict'
// The read cache of a manager (lib/backend/native.js and lib/backend/redis.js keep one each),
// and the copies it is built on, which index.js uses too: `toJsonData` makes a `set`'s
// `new_value`.
//
// A JSON.parse of a ~200-byte value costs about ten times a copy of an already parsed one, so
// each manager keeps the values it has parsed (or stored) beside the store's version of them
// (see `Version` in crates/stepstate-core/src/engine.rs; on Redis, the item's version there). A
// read passes the version it holds; the store answers `true` when that is still the stored
// value, and only then is the cached value used, so the cache can never serve a value another
// manager, thread, process or expiry has replaced. Cached values are private: callers always
// get a copy, and a cached value is handed out as an `old_value` only by the write that
// replaces it (and leaves the cache with it).

/**
 * A copy of `value`, which holds only what JSON.parse makes (plain objects and arrays, strings,
 * finite numbers, booleans, null); the cache holds nothing else. Object spread copies a
 * parsed object's fields in one step. Top-level objects and nested ones are copied at two
 * different spread sites, so that each site sees few object shapes (an order, and its
 * customer and items) and V8 keeps it on its fast path.
 */
function copyJson(value) {
  if (typeof value !== 'object' || value === null) return value
  if (Array.isArray(value)) return copyArray(value)
  const out = { ...value }
  copyFields(out)
  return out
}

function copyObject(value) {
  const out = { ...value }
  copyFields(out)
  return out
}

/** copyJson of the object a counter's update changed (see `updateResult`): a spread site of
 *  its own, which sees only the counters' objects, not every value read or written. */
function copyCounted(value) {
  const out = { ...value }
  copyFields(out)
  return out
}

/** Replaces the object and array fields of a fresh shallow copy with copies of their own. */
function copyFields(out) {
  for (const name in out) {
    const field = out[name]
    // `for in` also walks inherited enumerable names: copy only own fields.
    if (typeof field === 'object' && field !== null && Object.hasOwn(out, name)) {
      out[name] = Array.isArray(field) ? copyArray(field) : copyObject(field)
    }
  }
}

function copyArray(value) {
  const out = value.slice()
  for (let i = 0; i < out.length; i++) {
    const item = out[i]
    if (typeof item === 'object' && item !== null) out[i] = Array.isArray(item) ? copyArray(item) : copyObject(item)
  }
  return out
}

/**
 * Sets each member of `members` (a parsed JSON object: what an update changed) on `value` (a
 * copy of the old value), in order: the result is the new value, as JSON.parse of its text
 * would give it (a member already there keeps its place, a new one goes to the end).
 */
function withMembers(value, members) {
  const names = Object.keys(members)
  for (let i = 0; i < names.length; i++) setField(value, names[i], members[names[i]])
  return value
}

/** Sets an own field as JSON.parse would: assigning `__proto__` would set the prototype. */
function setField(target, name, value) {
  if (name === '__proto__') Object.defineProperty(target, name, { value, enumerable: true, writable: true, configurable: true })
  else target[name] = value
}

/** setField for a counter's update alone: a store site of its own, which sees only the
 *  counters' objects, not every object a `set` copies (see `updateResult`). */
function setCounter(target, name, value) {
  if (name === '__proto__') Object.defineProperty(target, name, { value, enumerable: true, writable: true, configurable: true })
  else target[name] = value
}

/**
 * The `{ new_value, old_value }` of an update, from the store's answer `text` to a manager that
 * held `cached` (the item's cache entry when the call was made; see `update` and
 * `update_answer` in src/store.rs): the changed members `{...}` of the cached old value, or,
 * with `number` (the in-process store's answer for a counter), the name of the one member that
 * changed, to `number`; the cached value then becomes the new value in place (it stays in the
 * older generation of the heap, where copies of it would cost the garbage collector a promotion
 * each). Or `[new]` (the cached value is the old one) or `[new, old]`, whose new value
 * `backend.keep` may cache. `version` and `length`: the new value's version and stored length.
 */
function updateResult(backend, group, key, cached, text, version, length, number) {
  if (number !== undefined || text.charCodeAt(0) === 123 /* { */) {
    const current = cached.value
    if (number !== undefined) {
      const oldValue = copyCounted(current)
      setCounter(current, text, number)
      // Only the in-process stores answer with a number, synchronously: `cached` is current.
      backend.cache.updateItem(cached, group, key, version, current, length)
      return { new_value: copyCounted(current), old_value: oldValue }
    }
    const oldValue = copyJson(current)
    withMembers(current, JSON.parse(text))
    const newValue = copyJson(current)
    backend.cache.putItem(group, key, version, current, length)
    return { new_value: newValue, old_value: oldValue }
  }
  const values = JSON.parse(text)
  const newValue = values[0]
  // Taken before `keep`, which may put the new value in the same entry.
  const oldValue = values.length === 1 ? cached.value : values[1]
  backend.keep(group, key, cached, newValue, length, version)
  return { new_value: newValue, old_value: oldValue }
}

/** Returned by `toJsonData` for what its fast path does not handle. */
const UNHANDLED = Symbol('unhandled')
/**
 * The deepest nesting of objects and arrays a stored value may have (the outermost counting as
 * 1), as the op engine's `MAX_NESTING` (crates/stepstate-core/src/ops/path.rs): deeper values
 * could not be read back (the engine's parser stops at 128, copies recurse) and are rejected.
 */
const MAX_NESTING = 100
/** The fast copy takes containers at depth 0 to MAX_DEPTH, i.e. nesting up to MAX_NESTING. */
const MAX_DEPTH = MAX_NESTING - 1

/** A JSON number as JSON.parse(JSON.stringify(n)) gives it: -0 becomes 0, NaN/±Infinity null. */
function jsonNumber(number) {
  return Number.isFinite(number) ? number + 0 : null
}

/**
 * What JSON.parse(JSON.stringify(value)) gives for an object or array `value`, made in one walk
 * (each field read once) so that a `set` can return it as `new_value` and stringify it without
 * parsing the text back. Handles plain objects and arrays of JSON values, with `undefined`,
 * functions and symbols dropped (objects) or nulled (arrays) as JSON.stringify does; returns
 * UNHANDLED for anything else (toJSON, class instances, Dates, boxed values, BigInts, deep or
 * cyclic values), which then takes the JSON.stringify + JSON.parse path.
 */
function toJsonData(value, depth = 0) {
  if (depth > MAX_DEPTH || typeof value.toJSON === 'function') return UNHANDLED
  const proto = Object.getPrototypeOf(value)
  if (Array.isArray(value)) {
    if (proto !== Array.prototype) return UNHANDLED
    const length = value.length
    const out = []
    for (let i = 0; i < length; i++) {
      const item = dataOf(value[i], depth)
      if (item === UNHANDLED) return UNHANDLED
      out.push(item === undefined ? null : item)
    }
    return out
  }
  if (proto !== Object.prototype && proto !== null) return UNHANDLED
  const out = {}
  const names = Object.keys(value)
  for (let i = 0; i < names.length; i++) {
    const name = names[i]
    const field = dataOf(value[name], depth)
    if (field === UNHANDLED) return UNHANDLED
    if (field !== undefined) setField(out, name, field)
  }
  return out
}

/** A field or element as JSON data: `undefined` for what JSON.stringify leaves out. */
function dataOf(value, depth) {
  switch (typeof value) {
    case 'string':
    case 'boolean':
      return value
    case 'number':
      return jsonNumber(value)
    case 'object':
      return value === null ? null : toJsonData(value, depth + 1)
    case 'undefined':
    case 'function':
    case 'symbol':
      return undefined
    default:
      return UNHANDLED // bigint
  }
}

/** Default budget of a manager's cache: JSON text bytes of the values it holds. */
const DEFAULT_CACHE_BYTES = 4 * 1024 * 1024
/** What an entry counts against the budget beyond its text, so that the number of entries is
 *  bounded too (a group read once leaves an entry holding no values). */
const ENTRY_BYTES = 64

/**
 * Parsed values of one manager by group and key, and whole groups as `getGroup` read them,
 * each with its engine version.
 *
 * Only what is used again, soon, is kept. The engine tells whether an item was read, or
 * written again, since it was created (the call status's `REUSED`): a key written or read
 * once (a large key set read at random) costs the cache nothing, no copy and no entry (on
 * Redis, where nothing tells that, a first use leaves the mark instead). A key used again
 * leaves a *mark* (an entry with no value, version 0), and a key whose mark is still there
 * when it is used once more has its value kept, from then on served as a copy without a parse.
 * So a working set larger than the cache, where marks are gone before their key comes back,
 * pays a map entry per read rather than a copy, and a hot key is a cache hit from its fourth
 * use on.
 *
 * Bounded by `limit` bytes of JSON text, in two generations of half the budget each: new
 * entries go to the young one; when it is full it becomes the old one (the previous old one is
 * dropped) and an old entry used again moves back to the young one. So a full cache forgets
 * only what was not used since the last turn, never everything at once.
 */
class ValueCache {
  constructor(limit) {
    this.limit = limit
    this.clear()
  }

  clear() {
    this.items = new Map() // young generation: group -> Map(key -> { version, value, bytes })
    this.groups = new Map() // young generation: group -> { version, values, bytes }
    this.olderItems = new Map() // the old generation, the same shapes
    this.olderGroups = new Map()
    this.bytes = 0 // both generations
    this.youngBytes = 0
  }

  /** The cached entry of an item (a mark's `value` is undefined), or undefined. */
  item(group, key) {
    const items = this.items.get(group)
    if (items !== undefined) {
      const entry = items.get(key)
      if (entry !== undefined) return entry
    }
    return this.olderItems.size === 0 ? undefined : this.promoteItem(group, key)
  }

  /** Moves an item of the old generation, if there, to the young one. */
  promoteItem(group, key) {
    const older = this.olderItems.get(group)
    if (older === undefined) return undefined
    const entry = older.get(key)
    if (entry === undefined) return undefined
    older.delete(key)
    if (older.size === 0) this.olderItems.delete(group)
    this.bytes -= entry.bytes
    if (!this.room(entry.bytes)) return undefined
    this.youngItems(group).set(key, entry)
    this.bytes += entry.bytes
    this.youngBytes += entry.bytes
    return entry
  }

  youngItems(group) {
    let items = this.items.get(group)
    if (items === undefined) {
      items = new Map()
      this.items.set(group, items)
    }
    return items
  }

  /** The version of the cached value of an item (0: none, or a mark), for the engine. */
  versionOf(entry) {
    return entry === undefined ? 0 : entry.version
  }

  /** Marks an item as used again recently: its next use keeps its value (see the class). */
  markItem(group, key) {
    this.putEntry(group, key, 0, undefined, ENTRY_BYTES)
  }

  /** Caches `value` (private: nobody else may hold it) as the item at `version`. */
  putItem(group, key, version, value, textBytes) {
    this.putEntry(group, key, version, value, textBytes + ENTRY_BYTES)
  }

  /**
   * Caches `value` as the item at `version`; returns what the caller who has `value` may hand
   * out: a value just parsed (`owned`) is cached as it is and the caller gets a copy, any other
   * is cached as a copy.
   */
  keepValue(group, key, version, value, textBytes, owned) {
    if (owned) {
      this.putItem(group, key, version, value, textBytes)
      return copyJson(value)
    }
    this.putItem(group, key, version, copyJson(value), textBytes)
    return value
  }

  /**
   * Caches `value` as the item at `version` in `entry`, the item's entry that `item` returned
   * earlier in the same synchronous call (so it is still in the young generation: nothing can
   * have run in between), without looking it up again; as `putItem` when it no longer fits.
   */
  updateItem(entry, group, key, version, value, textBytes) {
    if (!this.setInPlace(entry, version, value, textBytes + ENTRY_BYTES)) this.putItem(group, key, version, value, textBytes)
  }

  /** Sets a young entry's value in place when its new size fits the young generation. */
  setInPlace(entry, version, value, bytes) {
    if (this.youngBytes - entry.bytes + bytes > this.limit / 2) return false
    this.bytes += bytes - entry.bytes
    this.youngBytes += bytes - entry.bytes
    entry.version = version
    entry.value = value
    entry.bytes = bytes
    return true
  }

  putEntry(group, key, version, value, bytes) {
    const items = this.items.get(group)
    const entry = items === undefined ? undefined : items.get(key)
    // In place, as most writes of a hot key find it: no map change, no new object.
    if (entry !== undefined && this.setInPlace(entry, version, value, bytes)) return
    this.dropItem(group, key)
    if (!this.room(bytes)) return
    this.youngItems(group).set(key, { version, value, bytes })
    this.bytes += bytes
    this.youngBytes += bytes
  }

  dropItem(group, key) {
    const items = this.items.get(group)
    const entry = items === undefined ? undefined : items.get(key)
    if (entry !== undefined) {
      this.bytes -= entry.bytes
      this.youngBytes -= entry.bytes
      items.delete(key)
      if (items.size === 0) this.items.delete(group)
      return
    }
    if (this.olderItems.size === 0) return
    const older = this.olderItems.get(group)
    const olderEntry = older === undefined ? undefined : older.get(key)
    if (olderEntry === undefined) return
    this.bytes -= olderEntry.bytes
    older.delete(key)
    if (older.size === 0) this.olderItems.delete(group)
  }

  /** The cached values of a whole group, or undefined. */
  group(group) {
    const cached = this.groups.get(group)
    if (cached !== undefined || this.olderGroups.size === 0) return cached
    const older = this.olderGroups.get(group)
    if (older === undefined) return undefined
    this.olderGroups.delete(group)
    this.bytes -= older.bytes
    if (!this.room(older.bytes)) return undefined
    this.groups.set(group, older)
    this.bytes += older.bytes
    this.youngBytes += older.bytes
    return older
  }

  putGroup(group, version, values, textBytes) {
    const bytes = textBytes + ENTRY_BYTES
    this.dropGroup(group)
    if (version === 0 || !this.room(bytes)) return
    this.groups.set(group, { version, values, bytes })
    this.bytes += bytes
    this.youngBytes += bytes
  }

  dropGroup(group) {
    const cached = this.groups.get(group)
    if (cached !== undefined) {
      this.bytes -= cached.bytes
      this.youngBytes -= cached.bytes
      this.groups.delete(group)
    }
    const older = this.olderGroups.get(group)
    if (older !== undefined) {
      this.bytes -= older.bytes
      this.olderGroups.delete(group)
    }
  }

  /** Forgets everything cached for a group (it was cleared). */
  forget(group) {
    this.dropGroup(group)
    const items = this.items.get(group)
    if (items !== undefined) {
      for (const entry of items.values()) {
        this.bytes -= entry.bytes
        this.youngBytes -= entry.bytes
      }
      this.items.delete(group)
    }
    const older = this.olderItems.get(group)
    if (older !== undefined) {
      for (const entry of older.values()) this.bytes -= entry.bytes
      this.olderItems.delete(group)
    }
  }

  /** Whether `bytes` more fit: when the young generation is full it becomes the old one (the
   *  previous old one is dropped), and the old one goes too when the budget needs its room. */
  room(bytes) {
    if (bytes > this.limit) return false
    if (this.youngBytes > 0 && this.youngBytes + bytes > this.limit / 2) {
      this.bytes = this.youngBytes
      this.olderItems = this.items
      this.olderGroups = this.groups
      this.items = new Map()
      this.groups = new Map()
      this.youngBytes = 0
    }
    if (this.bytes + bytes > this.limit) {
      this.bytes = this.youngBytes
      this.olderItems = new Map()
      this.olderGroups = new Map()
    }
    return true
  }
}

module.exports = { ValueCache, DEFAULT_CACHE_BYTES, MAX_NESTING, copyJson, toJsonData, updateResult, withMembers, UNHANDLED }
