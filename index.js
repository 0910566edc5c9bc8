'use strict'
// The public face of stepstate: `StateManager`, the same for every kind of store.
//
// It owns what every store shares: argument and option checks, values and ops as JSON text
// (JSON.stringify here; the `new_value` of a `set`), change events (`onChange`, `watch`,
// listener errors), the open/closed state and `close`. Each storage call goes to
// `this._backend`, chosen from `options.adapter` when the manager is made (lib/backend/: the
// backend's methods are listed at the top of native.js); whatever a backend method returns, a
// value or a Promise of it, the `async` method returns as is. Errors are coded (lib/errors.js):
// `StateError`, or `TypeError` for bad arguments, each with a `code`.

const { EventEmitter } = require('node:events')
const { NativeBackend } = require('./lib/backend/native.js')
const { RedisBackend } = require('./lib/backend/redis.js')
const { AdapterBackend } = require('./lib/backend/adapter.js')
const { DEFAULT_CACHE_BYTES, MAX_NESTING, toJsonData, UNHANDLED } = require('./lib/cache.js')
const { StateError, makeError, reason, describe } = require('./lib/errors.js')
const { simpleOpsText } = require('./lib/ops-text.js')

/**
 * The longest JSON text of a value, in bytes of UTF-8: half of V8's largest string (2^29 − 24),
 * less the 3 of `[,]`, so that a value, and an update's new and old values together, can always
 * be given back (V8 makes no string of more UTF-8 bytes than that). The engine holds results of
 * `update` to the same number (`MAX_VALUE_TEXT_BYTES` in crates/stepstate-core/src/ops/mod.rs).
 */
const MAX_VALUE_TEXT_BYTES = ((2 ** 29 - 24 - 3) / 2) | 0
/** A text of at most this many UTF-16 units has at most MAX_VALUE_TEXT_BYTES bytes of UTF-8. */
const SURELY_SHORT_ENOUGH = Math.floor(MAX_VALUE_TEXT_BYTES / 3)

// The engine checks emptiness and the 1024-byte limit; JavaScript-only cases are checked here:
// the type, and lone surrogates (which UTF-8 cannot carry, so two different keys would collide).
function checkName(what, name) {
  if (typeof name !== 'string' || name.length === 0) {
    throw makeError('INVALID_ARGUMENT', `${what} must be a non-empty string, got ${describe(name)}`)
  }
  if (!name.isWellFormed()) {
    throw makeError('INVALID_ARGUMENT', `${what} ${JSON.stringify(name)} contains a lone surrogate`)
  }
}

function itemName(group, key) {
  return `${JSON.stringify(group)}/${JSON.stringify(key)}`
}

/** JSON text of a value, as JSON.stringify makes it; rejects what JSON cannot hold. */
function serialize(value, action, group, key) {
  let text
  try {
    text = JSON.stringify(value)
  } catch (err) {
    throw makeError('INVALID_VALUE', `${action} ${itemName(group, key)}: value is not JSON: ${reason(err)}`, undefined, err)
  }
  if (text === undefined || (typeof value === 'number' && !Number.isFinite(value))) {
    throw makeError('INVALID_VALUE', `${action} ${itemName(group, key)}: ${describe(value)} is not a JSON value`)
  }
  return text
}

/**
 * The value JSON.parse makes of `text` (JSON.stringify's output for a value the fast copy did not
 * take: toJSON, class instances, deep values), checked to nest at most MAX_NESTING objects and
 * arrays, so that what is stored can be read back and updated.
 */
function parseStorable(text, action, group, key) {
  let value
  try {
    value = JSON.parse(text)
  } catch (err) {
    throw makeError('INVALID_VALUE', `${action} ${itemName(group, key)}: value cannot be read back: ${reason(err)}`, undefined, err)
  }
  if (nestsDeeper(value, MAX_NESTING)) {
    throw makeError(
      'INVALID_VALUE',
      `${action} ${itemName(group, key)}: value nests objects/arrays more than ${MAX_NESTING} levels deep, more than a stored value may have`,
    )
  }
  return value
}

/** Whether a parsed JSON value nests objects and arrays more than `room` levels deep. */
function nestsDeeper(value, room) {
  if (typeof value !== 'object' || value === null) return false
  if (room === 0) return true
  const items = Array.isArray(value) ? value : Object.values(value)
  for (let i = 0; i < items.length; i++) if (nestsDeeper(items[i], room - 1)) return true
  return false
}

/** Rejects a value whose JSON text could be stored but not given back (see MAX_VALUE_TEXT_BYTES);
 *  an O(1) length check unless the text is hundreds of megabytes long. */
function checkTextLength(text, action, group, key) {
  if (text.length <= SURELY_SHORT_ENOUGH) return
  const bytes = Buffer.byteLength(text)
  if (bytes > MAX_VALUE_TEXT_BYTES) {
    throw makeError(
      'VALUE_TOO_LARGE',
      `${action} ${itemName(group, key)}: value is ${bytes} bytes of JSON, more than the ${MAX_VALUE_TEXT_BYTES} that can be read back`,
    )
  }
}

function isNonJsonNumber(value) {
  return typeof value === 'number' && !Number.isFinite(value)
}

/** JSON text of an op list. JSON.stringify would turn NaN into null and drop functions
 *  silently, so top-level op values that are not JSON are rejected here with their index. */
function serializeOps(ops, group, key) {
  // A Proxy (revoked, or with a throwing trap) as the list is a bad argument, with its error.
  let length
  try {
    length = Array.isArray(ops) ? ops.length : -1
  } catch (err) {
    throw makeError('INVALID_ARGUMENT', `update ${itemName(group, key)}: reading ops threw: ${reason(err)}`, undefined, err)
  }
  if (length < 0) {
    throw makeError('INVALID_ARGUMENT', `update ${itemName(group, key)}: ops must be an array, got ${describe(ops)}`)
  }
  const opError = (index, what, cause) =>
    makeError('INVALID_OP', `update ${itemName(group, key)}: op ${index}: ${what}`, index, cause)
  for (let index = 0; index < length; index++) {
    let op
    try {
      op = ops[index]
    } catch (err) {
      throw makeError('INVALID_ARGUMENT', `update ${itemName(group, key)}: reading ops threw: ${reason(err)}`, undefined, err)
    }
    if (op === null || typeof op !== 'object') continue // the engine names what is wrong
    let value
    let by
    try {
      value = op.value
      by = op.by
    } catch (err) {
      throw opError(index, `reading the op threw: ${reason(err)}`, err)
    }
    if (isNonJsonNumber(value) || typeof value === 'function' || typeof value === 'symbol' || typeof value === 'bigint') {
      throw opError(index, `value ${describe(value)} is not a JSON value`)
    }
    if (isNonJsonNumber(by)) throw opError(index, `by must be a finite number, got ${by}`)
  }
  const simple = simpleOpsText(ops, length)
  if (simple !== undefined) return simple
  try {
    return JSON.stringify(ops)
  } catch (err) {
    for (let index = 0; index < length; index++) {
      try {
        JSON.stringify(ops[index])
      } catch (inner) {
        throw opError(index, `not JSON: ${reason(inner)}`, inner)
      }
    }
    throw opError(0, `not JSON: ${reason(err)}`, err)
  }
}

/** The longest group or key, in bytes of UTF-8 (the engine checks names it is given). */
const MAX_NAME_BYTES = 1024

/** The stores there are, by `options.adapter`, each with the backend that serves it; an object
 *  as `options.adapter` is a user's own store (a `StateAdapter`), served by AdapterBackend. */
const BACKENDS = new Map([
  ['memory', NativeBackend],
  ['file', NativeBackend],
  ['redis', RedisBackend],
])

/**
 * Checks the options every store takes (`adapter`, `maxValueBytes`, `ttl`, `cacheBytes`); a
 * store's own options are its backend's to check. Returns them with their defaults.
 */
function checkOptions(options) {
  if (options === null || typeof options !== 'object') {
    throw makeError('INVALID_ARGUMENT', `options must be an object, got ${describe(options)}`)
  }
  const adapter = options.adapter === undefined ? 'memory' : options.adapter
  if (!BACKENDS.has(adapter) && (adapter === null || typeof adapter !== 'object')) {
    const name = typeof adapter === 'string' ? JSON.stringify(adapter) : describe(adapter)
    throw makeError(
      'INVALID_ARGUMENT',
      `adapter ${name} is not available; use one of: ${[...BACKENDS.keys()].join(', ')}, or an object implementing StateAdapter`,
    )
  }
  const maxValueBytes = options.maxValueBytes === undefined ? 0 : options.maxValueBytes
  if (!Number.isSafeInteger(maxValueBytes) || maxValueBytes < 0) {
    throw makeError('INVALID_ARGUMENT', `maxValueBytes must be a positive integer, got ${describe(maxValueBytes)}`)
  }
  const defaultTtlMs = options.ttl === undefined ? 0 : ttlMillis(options.ttl, 'options.ttl')
  const cacheBytes = options.cacheBytes === undefined ? DEFAULT_CACHE_BYTES : options.cacheBytes
  if (!Number.isSafeInteger(cacheBytes) || cacheBytes < 0) {
    throw makeError('INVALID_ARGUMENT', `cacheBytes must be 0 or a positive integer, got ${describe(cacheBytes)}`)
  }
  return { adapter, maxValueBytes, defaultTtlMs, cacheBytes }
}

/** A TTL in seconds (fractions allowed) as whole milliseconds, at least 1. */
function ttlMillis(ttl, what) {
  if (typeof ttl !== 'number' || !Number.isFinite(ttl) || ttl <= 0) {
    throw makeError('INVALID_ARGUMENT', `${what} must be a positive number of seconds, got ${describe(ttl)}`)
  }
  return Math.max(1, Math.ceil(ttl * 1000))
}

/** The filter's fields, each read once; a getter or Proxy trap that throws is a bad argument. */
function checkFilter(filter) {
  if (filter === undefined) return {}
  if (filter === null || typeof filter !== 'object') {
    throw makeError('INVALID_ARGUMENT', `filter must be an object, got ${describe(filter)}`)
  }
  let group
  let key
  let condition
  try {
    ;({ group, key, condition } = filter)
  } catch (err) {
    throw makeError('INVALID_ARGUMENT', `reading the filter threw: ${reason(err)}`, undefined, err)
  }
  if (group !== undefined) checkFilterName('filter.group', group)
  if (key !== undefined) checkFilterName('filter.key', key)
  if (condition !== undefined && typeof condition !== 'function') {
    throw makeError('INVALID_ARGUMENT', 'filter.condition must be a function')
  }
  return { group, key, condition }
}

/** A filter name is checked like the name it must match: no longer than MAX_NAME_BYTES. */
function checkFilterName(what, name) {
  checkName(what, name)
  const bytes = Buffer.byteLength(name)
  if (bytes > MAX_NAME_BYTES) {
    throw makeError('INVALID_ARGUMENT', `${what} is ${bytes} bytes long; at most ${MAX_NAME_BYTES} bytes are allowed`)
  }
}

/**
 * Grouped key-value state. Every method returns a Promise; see README.md for the contract.
 */
class StateManager extends EventEmitter {
  /** Opens a store and resolves once it is ready. */
  static async open(options = {}) {
    const manager = new StateManager(options)
    await manager._ready()
    return manager
  }

  constructor(options = {}) {
    super()
    let backend
    try {
      const settings = checkOptions(options)
      const Backend = typeof settings.adapter === 'object' ? AdapterBackend : BACKENDS.get(settings.adapter)
      backend = new Backend(settings, options)
    } catch (err) {
      if (typeof err?.code === 'string') throw err
      throw makeError('INVALID_ARGUMENT', `reading the options threw: ${reason(err)}`, undefined, err)
    }
    this._closed = false
    this._subscriptions = new Set()
    this._watchers = new Set() // the `finish` of every open watch() iterator
    // The backend while it takes calls: null while the store opens, and once it is closed.
    this._backend = null
    const opening = backend.open()
    if (opening === undefined) {
      this._backend = backend
      this._opening = null
      return
    }
    // Calls made before the store is ready wait for it (see `_ready`).
    this._opening = opening.then(() => {
      if (this._closed) return backend.close()
      this._backend = backend
      return undefined
    })
    this._opening.catch(() => {}) // the error is reported by `open()` and by every call
  }

  /** The backend once the store is open; rejects with the open error otherwise. */
  async _ready() {
    if (this._opening !== null) await this._opening
    if (this._backend === null) throw makeError('CLOSED', 'the store is closed')
    return this._backend
  }

  async set(group, key, value, opts) {
    const backend = this._backend || (await this._ready())
    checkName('group', group)
    checkName('key', key)
    let ttlMs = -1
    if (opts !== undefined) {
      if (opts === null || typeof opts !== 'object') {
        throw makeError('INVALID_ARGUMENT', `set ${itemName(group, key)}: options must be an object`)
      }
      let ttl
      try {
        ttl = opts.ttl
      } catch (err) {
        throw makeError('INVALID_ARGUMENT', `set ${itemName(group, key)}: reading opts.ttl threw: ${reason(err)}`, undefined, err)
      }
      if (ttl !== undefined) ttlMs = ttlMillis(ttl, 'opts.ttl')
    }
    // An object or array is copied as JSON data first and that copy stringified: the copy is
    // `new_value`, with no JSON.parse of the text (the copy also bounds its nesting). Anything
    // else goes text first, and is parsed back and checked before anything is stored.
    let data = UNHANDLED
    if (typeof value === 'object' && value !== null) {
      try {
        data = toJsonData(value)
      } catch (err) {
        throw makeError('INVALID_VALUE', `set ${itemName(group, key)}: reading the value threw: ${reason(err)}`, undefined, err)
      }
    }
    const text = data === UNHANDLED ? serialize(value, 'set', group, key) : JSON.stringify(data)
    checkTextLength(text, 'set', group, key)
    const newValue = data === UNHANDLED ? parseStorable(text, 'set', group, key) : data
    return backend.set(group, key, text, newValue, ttlMs)
  }

  async get(group, key) {
    const backend = this._backend || (await this._ready())
    checkName('group', group)
    checkName('key', key)
    return backend.get(group, key)
  }

  async update(group, key, ops) {
    const backend = this._backend || (await this._ready())
    checkName('group', group)
    checkName('key', key)
    return backend.update(group, key, serializeOps(ops, group, key))
  }

  async delete(group, key) {
    const backend = this._backend || (await this._ready())
    checkName('group', group)
    checkName('key', key)
    return backend.delete(group, key)
  }

  async clear(group) {
    const backend = this._backend || (await this._ready())
    checkName('group', group)
    return backend.clear(group)
  }

  async getGroup(group) {
    const backend = this._backend || (await this._ready())
    checkName('group', group)
    return backend.getGroup(group)
  }

  async list(group) {
    return this.getGroup(group)
  }

  async entries(group) {
    const backend = this._backend || (await this._ready())
    checkName('group', group)
    return backend.entries(group)
  }

  async keys(group) {
    const backend = this._backend || (await this._ready())
    checkName('group', group)
    return backend.keys(group)
  }

  async listGroups() {
    const backend = this._backend || (await this._ready())
    return backend.listGroups()
  }

  /**
   * Calls `listener(event)` after each committed change that matches `filter`
   * (`{ group?, key?, condition? }`); returns a function that unsubscribes. Events arrive in
   * batches on a later turn of the event loop, never inside the write, in commit order per key.
   * A listener that throws or rejects does not affect the write or other listeners: the error
   * is emitted as `'error'` (err, event) on this manager, or printed as a process warning when
   * no `'error'` listener is attached.
   */
  onChange(listener, filter) {
    if (typeof listener !== 'function') {
      throw makeError('INVALID_ARGUMENT', `listener must be a function, got ${describe(listener)}`)
    }
    const { group, key, condition } = checkFilter(filter)
    const subscription = { backend: null, subscribed: null, active: true, off: null }
    const deliver = (events) => {
      for (const event of events) {
        if (!subscription.active) return
        this._callListener(listener, condition, event)
      }
    }
    const subscribe = (backend) => {
      if (!subscription.active) return
      subscription.subscribed = backend.subscribe(group ?? null, key ?? null, deliver)
      subscription.backend = backend
    }
    if (this._backend !== null) {
      subscribe(this._backend)
    } else if (this._closed || this._opening === null) {
      throw makeError('CLOSED', 'the store is closed')
    } else {
      // Still opening: subscribe once open, before any queued call writes.
      this._opening.then(() => this._backend !== null && subscribe(this._backend)).catch(() => {})
    }
    subscription.off = () => {
      if (!subscription.active) return
      subscription.active = false
      this._subscriptions.delete(subscription)
      if (subscription.backend !== null) subscription.backend.unsubscribe(subscription.subscribed)
      subscription.backend = null
      subscription.subscribed = null
    }
    this._subscriptions.add(subscription)
    return subscription.off
  }

  _callListener(listener, condition, event) {
    try {
      if (condition !== undefined && !condition(event)) return
      const result = listener(event)
      if (result !== null && typeof result === 'object' && typeof result.then === 'function') {
        result.then(undefined, (err) => this._listenerFailed(err, event))
      }
    } catch (err) {
      this._listenerFailed(err, event)
    }
  }

  _listenerFailed(err, event) {
    if (this.listenerCount('error') > 0) {
      this.emit('error', err, event)
    } else {
      process.emitWarning(
        `a change listener failed on ${event.event_type} of ${itemName(event.group_id, event.item_id)}: ${err && err.stack ? err.stack : err}`,
        { type: 'StepstateListenerError', code: 'LISTENER_FAILED' },
      )
    }
  }

  /**
   * The changes matching `filter` as an async iterator:
   * `for await (const event of state.watch({ group: 'orders' })) { ... }`. Events are buffered
   * from the moment `watch` is called; `break` (or `return()`) unsubscribes.
   */
  watch(filter) {
    const buffered = []
    let waiting = null
    let finished = false
    const off = this.onChange((event) => {
      if (waiting !== null) {
        const resolve = waiting
        waiting = null
        resolve({ value: event, done: false })
      } else {
        buffered.push(event)
      }
    }, filter)
    const finish = () => {
      finished = true
      buffered.length = 0
      this._watchers.delete(finish)
      off()
      if (waiting !== null) {
        waiting({ value: undefined, done: true })
        waiting = null
      }
      return Promise.resolve({ value: undefined, done: true })
    }
    const iterator = {
      next: () => {
        if (finished) return Promise.resolve({ value: undefined, done: true })
        if (buffered.length > 0) return Promise.resolve({ value: buffered.shift(), done: false })
        if (this._closed) return Promise.resolve({ value: undefined, done: true })
        return new Promise((resolve) => {
          waiting = resolve
        })
      },
      return: finish,
      [Symbol.asyncIterator]() {
        return iterator
      },
    }
    this._watchers.add(finish)
    return iterator
  }

  /**
   * Flushes everything acknowledged and releases files, locks and the store's threads (the
   * last manager of a file store in this process closes it). Calling it twice is harmless;
   * other calls afterwards reject with code `CLOSED`.
   */
  async close() {
    if (this._closed) return
    this._closed = true
    for (const subscription of [...this._subscriptions]) subscription.off()
    for (const finish of [...this._watchers]) finish()
    if (this._opening !== null) {
      try {
        await this._opening
      } catch {
        return // it never opened: nothing to release
      }
    }
    const backend = this._backend
    this._backend = null
    if (backend !== null) return backend.close()
    return undefined
  }
}

module.exports = { StateManager, StateError }
