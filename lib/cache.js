'use strict'
// The read cache of an in-process store (lib/backend/native.js keeps one per manager), and the
// copies it is built on, which index.js uses too: `toJsonData` makes a `set`'s `new_value`.
//
// A JSON.parse of a ~200-byte value costs about ten times a copy of an already parsed one, so
// each manager keeps the values it has parsed (or stored) beside the engine's version of them
// (see `Version` in crates/stepstate-core/src/engine.rs). A read passes the version it holds;
// the engine answers `true` when that is still the stored value, and only then is the cached
// value used, so the cache can never serve a value another manager, thread or expiry has
// replaced. Cached values are private: callers always get a copy, and a cached value is handed
// out as an `old_value` only by the write that replaces it (and leaves the cache with it).

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
 * each with its engine version. Bounded by `limit` bytes of JSON text: when full, it starts
 * over empty (cheaper per call than keeping a recency order, and a working set that fits stays).
 */
class ValueCache {
  constructor(limit) {
    this.limit = limit
    this.clear()
  }

  clear() {
    this.items = new Map() // group -> Map(key -> { version, value, bytes })
    this.groups = new Map() // group -> { version, values, bytes }
    this.bytes = 0
  }

  /** The cached entry of an item, or undefined. */
  item(group, key) {
    const items = this.items.get(group)
    return items === undefined ? undefined : items.get(key)
  }

  /** The version of the cached item (0: none), for the engine to compare. */
  versionOf(entry) {
    return entry === undefined ? 0 : entry.version
  }

  /** Caches `value` (private: nobody else may hold it) as the item at `version`. */
  putItem(group, key, version, value, textBytes) {
    const bytes = textBytes + ENTRY_BYTES
    if (!this.room(bytes)) return this.dropItem(group, key)
    let items = this.items.get(group)
    if (items === undefined) {
      items = new Map()
      this.items.set(group, items)
    }
    const entry = items.get(key)
    if (entry === undefined) {
      items.set(key, { version, value, bytes })
    } else {
      this.bytes -= entry.bytes
      entry.version = version
      entry.value = value
      entry.bytes = bytes
    }
    this.bytes += bytes
  }

  dropItem(group, key) {
    const items = this.items.get(group)
    if (items === undefined) return
    const entry = items.get(key)
    if (entry === undefined) return
    this.bytes -= entry.bytes
    items.delete(key)
    if (items.size === 0) this.items.delete(group)
  }

  /** The cached values of a whole group, or undefined. */
  group(group) {
    return this.groups.get(group)
  }

  putGroup(group, version, values, textBytes) {
    const bytes = textBytes + ENTRY_BYTES
    this.dropGroup(group)
    if (version === 0 || !this.room(bytes)) return
    this.groups.set(group, { version, values, bytes })
    this.bytes += bytes
  }

  dropGroup(group) {
    const cached = this.groups.get(group)
    if (cached === undefined) return
    this.bytes -= cached.bytes
    this.groups.delete(group)
  }

  /** Forgets everything cached for a group (it was cleared). */
  forget(group) {
    this.dropGroup(group)
    const items = this.items.get(group)
    if (items === undefined) return
    for (const entry of items.values()) this.bytes -= entry.bytes
    this.items.delete(group)
  }

  /** Whether `bytes` more fit, starting over when they would not. */
  room(bytes) {
    if (bytes > this.limit) return false
    if (this.bytes + bytes > this.limit) this.clear()
    return true
  }
}

module.exports = { ValueCache, DEFAULT_CACHE_BYTES, MAX_NESTING, copyJson, toJsonData, withMembers, UNHANDLED }
