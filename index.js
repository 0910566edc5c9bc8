'use strict'
// The public face of stepstate: `StateManager` over the native binding.
//
// Every method is an `async` wrapper around one synchronous native call: values cross as JSON
// text (JSON.stringify here, JSON.parse of the returned text), so a call never hops threads and
// never converts values field by field. Native errors arrive as `code \x1f opIndex \x1f message`
// and are rebuilt here into `StateError` (or `TypeError` for bad arguments) with a `code`.

const { EventEmitter } = require('node:events')
const native = require('./binding.js')
const { ValueCache, DEFAULT_CACHE_BYTES, MAX_NESTING, copyJson, toJsonData, withMembers, UNHANDLED } = require('./cache.js')

const ERROR_FIELD_SEPARATOR = '\u001f'

/**
 * The longest JSON text of a value, in bytes of UTF-8: half of V8's largest string (2^29 − 24),
 * less the 3 of `[,]`, so that a value, and an update's new and old values together, can always
 * be given back (V8 makes no string of more UTF-8 bytes than that). The engine holds results of
 * `update` to the same number (`MAX_VALUE_TEXT_BYTES` in crates/stepstate-core/src/ops/mod.rs).
 */
const MAX_VALUE_TEXT_BYTES = ((2 ** 29 - 24 - 3) / 2) | 0
/** A text of at most this many UTF-16 units has at most MAX_VALUE_TEXT_BYTES bytes of UTF-8. */
const SURELY_SHORT_ENOUGH = Math.floor(MAX_VALUE_TEXT_BYTES / 3)

/** An error of the store; `code` is stable, `opIndex` names the failing op of an update. */
class StateError extends Error {
  constructor(code, message, opIndex, options) {
    super(message, options)
    this.name = 'StateError'
    this.code = code
    if (opIndex !== undefined) this.opIndex = opIndex
  }
}

/** An error with its code; `cause` is what the caller's own code threw, when it threw. */
function makeError(code, message, opIndex, cause) {
  const options = cause === undefined ? undefined : { cause }
  if (code === 'INVALID_ARGUMENT') {
    const err = new TypeError(message, options)
    err.code = code
    return err
  }
  return new StateError(code, message, opIndex, options)
}

/** What a caller's getter, Proxy trap or toJSON threw, for a message. */
function reason(err) {
  try {
    return err instanceof Error ? err.message : String(err)
  } catch {
    return 'an unprintable value'
  }
}

/** Turns an error thrown by the binding back into a StateError with its code. */
function fromNative(err) {
  const message = err && err.message
  if (typeof message !== 'string') return err
  const first = message.indexOf(ERROR_FIELD_SEPARATOR)
  if (first < 0) return err
  const second = message.indexOf(ERROR_FIELD_SEPARATOR, first + 1)
  const opIndex = message.slice(first + 1, second)
  return makeError(message.slice(0, first), message.slice(second + 1), opIndex === '' ? undefined : Number(opIndex))
}

function describe(value) {
  if (value === null) return 'null'
  if (typeof value === 'string') return value === '' ? 'an empty string' : JSON.stringify(value)
  return typeof value === 'object' ? 'an object' : `${typeof value} ${String(value)}`
}

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

function parseOrNull(text) {
  return text == null ? null : JSON.parse(text)
}

/** The longest group or key, in bytes of UTF-8 (the engine checks names it is given). */
const MAX_NAME_BYTES = 1024

const ADAPTERS = ['memory', 'file']
const SYNC_POLICIES = ['always', 'everysec', 'no']

/** Checks the options; returns what the native open functions take. */
function checkOptions(options) {
  if (options === null || typeof options !== 'object') {
    throw makeError('INVALID_ARGUMENT', `options must be an object, got ${describe(options)}`)
  }
  const adapter = options.adapter === undefined ? 'memory' : options.adapter
  if (!ADAPTERS.includes(adapter)) {
    const name = typeof adapter === 'string' ? JSON.stringify(adapter) : describe(adapter)
    throw makeError('INVALID_ARGUMENT', `adapter ${name} is not available; use one of: ${ADAPTERS.join(', ')}`)
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
  if (adapter === 'memory') return { adapter, maxValueBytes, defaultTtlMs, cacheBytes }
  const path = options.path === undefined ? '.stepstate' : options.path
  if (typeof path !== 'string' || path.length === 0) {
    throw makeError('INVALID_ARGUMENT', `path must be a non-empty string (a directory), got ${describe(path)}`)
  }
  const sync = options.sync === undefined ? 'everysec' : options.sync
  if (!SYNC_POLICIES.includes(sync)) {
    throw makeError('INVALID_ARGUMENT', `sync must be one of ${SYNC_POLICIES.join(', ')}, got ${describe(sync)}`)
  }
  const compactMinBytes = options.compactMinBytes === undefined ? 0 : options.compactMinBytes
  if (!Number.isSafeInteger(compactMinBytes) || compactMinBytes < 0) {
    throw makeError('INVALID_ARGUMENT', `compactMinBytes must be a positive integer, got ${describe(compactMinBytes)}`)
  }
  return { adapter, maxValueBytes, defaultTtlMs, cacheBytes, path, sync, compactMinBytes }
}

/**
 * Acknowledgements of `sync: 'always'` writes: a write's promise resolves once the log's sync
 * thread reports a durable ticket at least as large as the write's. While any write waits, the
 * notification callback keeps the process alive; otherwise it does not.
 */
class DurableAcks {
  constructor(handle) {
    this.acked = 0
    this.pending = [] // ticket, resolve, reject, ticket, resolve, reject, ...
    this.failure = null
    this.keepingAlive = false
    this.watch = native.watchDurable(handle, (ticket) => this.reached(ticket))
  }

  wait(ticket) {
    if (this.failure !== null) return Promise.reject(this.failure)
    if (ticket <= this.acked) return undefined
    return new Promise((resolve, reject) => {
      this.pending.push(ticket, resolve, reject)
      this.keepAlive(true)
    })
  }

  reached(ticket) {
    if (ticket < 0) {
      this.fail(makeError('IO', 'the log failed to sync; writes that were not yet on disk are not acknowledged'))
      return
    }
    if (ticket > this.acked) this.acked = ticket
    let done = 0
    while (done < this.pending.length && this.pending[done] <= ticket) {
      this.pending[done + 1]()
      done += 3
    }
    if (done > 0) this.pending.splice(0, done)
    if (this.pending.length === 0) this.keepAlive(false)
  }

  fail(err) {
    this.failure = err
    for (let i = 0; i < this.pending.length; i += 3) this.pending[i + 2](err)
    this.pending = []
    this.keepAlive(false)
  }

  keepAlive(on) {
    if (this.keepingAlive === on || this.watch === null) return
    this.keepingAlive = on
    native.durableRef(this.watch, on)
  }

  /** After a successful close everything is on disk: resolve whatever still waits. */
  closed(err) {
    if (err) this.fail(err)
    else this.reached(Number.MAX_SAFE_INTEGER)
    native.unwatchDurable(this.watch)
    this.watch = null
  }
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
    let settings
    try {
      settings = checkOptions(options)
    } catch (err) {
      if (typeof err?.code === 'string') throw err
      throw makeError('INVALID_ARGUMENT', `reading the options threw: ${reason(err)}`, undefined, err)
    }
    this._closed = false
    this._subscriptions = new Set()
    this._watchers = new Set() // the `finish` of every open watch() iterator
    this._acks = null
    this._cache = new ValueCache(settings.cacheBytes)
    if (settings.adapter === 'memory') {
      this._handle = native.openMemory(settings.maxValueBytes, settings.defaultTtlMs)
      this._opening = null
      return
    }
    // Calls made before the store is ready wait for it (see `_ready`).
    this._handle = null
    this._opening = native
      .openFile(settings.path, settings.sync, settings.maxValueBytes, settings.defaultTtlMs, settings.compactMinBytes)
      .then(
        (handle) => {
          // The store's policy, which the first manager to open this directory chose.
          if (native.syncPolicy(handle) === 'always') this._acks = new DurableAcks(handle)
          if (this._closed) {
            native.close(handle)
            return
          }
          this._handle = handle
        },
        (err) => {
          throw fromNative(err)
        },
      )
    this._opening.catch(() => {}) // the error is reported by `open()` and by every call
  }

  /** The native handle once the store is open; rejects with the open error otherwise. */
  async _ready() {
    if (this._opening !== null) await this._opening
    if (this._handle === null) throw makeError('CLOSED', 'the store is closed')
    return this._handle
  }

  /** Resolves once a write journaled by this thread is acknowledged by its sync policy. */
  _acknowledged() {
    return this._acks === null ? undefined : this._acks.wait(native.lastTicket())
  }

  async set(group, key, value, opts) {
    const handle = this._handle || (await this._ready())
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
    const cache = this._cache
    const cached = cache.item(group, key)
    let old
    try {
      old = native.set(handle, group, key, text, ttlMs, cache.versionOf(cached))
    } catch (err) {
      throw fromNative(err)
    }
    const oldValue = old === true ? cached.value : parseOrNull(old)
    cache.putItem(group, key, native.lastVersion(), copyJson(newValue), text.length)
    const acknowledged = this._acknowledged()
    if (acknowledged !== undefined) await acknowledged
    return { new_value: newValue, old_value: oldValue }
  }

  async get(group, key) {
    const handle = this._handle || (await this._ready())
    checkName('group', group)
    checkName('key', key)
    const cache = this._cache
    const cached = cache.item(group, key)
    let text
    try {
      text = native.get(handle, group, key, cache.versionOf(cached))
    } catch (err) {
      throw fromNative(err)
    }
    if (text === true) return copyJson(cached.value)
    if (text === null) {
      if (cached !== undefined) cache.dropItem(group, key)
      return null
    }
    const value = JSON.parse(text)
    cache.putItem(group, key, native.lastVersion(), value, text.length)
    return copyJson(value)
  }

  async update(group, key, ops) {
    const handle = this._handle || (await this._ready())
    checkName('group', group)
    checkName('key', key)
    const text = serializeOps(ops, group, key)
    const cache = this._cache
    const cached = cache.item(group, key)
    let pair
    try {
      pair = native.update(handle, group, key, text, cache.versionOf(cached))
    } catch (err) {
      throw fromNative(err)
    }
    // When the old value is the cached one: the changed members `{...}`, or `[new]`;
    // otherwise `[new, old]`.
    let newValue
    let oldValue
    if (pair.charCodeAt(0) === 123 /* { */) {
      // The cached value becomes the new one in place (it stays in the older generation of
      // the heap, where copies of it would cost the garbage collector a promotion each).
      const current = cached.value
      oldValue = copyJson(current)
      withMembers(current, JSON.parse(pair))
      newValue = copyJson(current)
      cache.putItem(group, key, native.lastVersion(), current, native.lastLength())
    } else {
      const values = JSON.parse(pair)
      newValue = values[0]
      oldValue = values.length === 1 ? cached.value : values[1]
      cache.putItem(group, key, native.lastVersion(), copyJson(newValue), pair.length)
    }
    const acknowledged = this._acknowledged()
    if (acknowledged !== undefined) await acknowledged
    return { new_value: newValue, old_value: oldValue }
  }

  async delete(group, key) {
    const handle = this._handle || (await this._ready())
    checkName('group', group)
    checkName('key', key)
    const cache = this._cache
    const cached = cache.item(group, key)
    let text
    try {
      text = native.delete(handle, group, key, cache.versionOf(cached))
    } catch (err) {
      throw fromNative(err)
    }
    if (cached !== undefined) cache.dropItem(group, key)
    if (text === null) return null
    const oldValue = text === true ? cached.value : JSON.parse(text)
    const acknowledged = this._acknowledged()
    if (acknowledged !== undefined) await acknowledged
    return oldValue
  }

  async clear(group) {
    const handle = this._handle || (await this._ready())
    checkName('group', group)
    let removed
    try {
      removed = native.clear(handle, group)
    } catch (err) {
      throw fromNative(err)
    }
    this._cache.forget(group)
    if (removed > 0) {
      const acknowledged = this._acknowledged()
      if (acknowledged !== undefined) await acknowledged
    }
  }

  async getGroup(group) {
    const handle = this._handle || (await this._ready())
    checkName('group', group)
    // A group's values are cached from the second read of one version on, so that a group
    // read once after each write pays no copy on top of the parse.
    const cache = this._cache
    const cached = cache.group(group)
    let text
    try {
      text = native.getGroup(handle, group, cached === undefined ? 0 : cached.version)
      if (text === true && cached.values === null) text = native.getGroup(handle, group, 0)
    } catch (err) {
      throw fromNative(err)
    }
    if (text === true) return copyJson(cached.values)
    const values = JSON.parse(text)
    const version = native.lastVersion()
    if (cached === undefined || cached.version !== version) {
      cache.putGroup(group, version, null, 0)
      return values
    }
    cache.putGroup(group, version, values, text.length)
    return copyJson(values)
  }

  async list(group) {
    return this.getGroup(group)
  }

  async entries(group) {
    const handle = this._handle || (await this._ready())
    checkName('group', group)
    try {
      return JSON.parse(native.entries(handle, group))
    } catch (err) {
      throw fromNative(err)
    }
  }

  async keys(group) {
    const handle = this._handle || (await this._ready())
    checkName('group', group)
    try {
      return JSON.parse(native.keys(handle, group))
    } catch (err) {
      throw fromNative(err)
    }
  }

  async listGroups() {
    const handle = this._handle || (await this._ready())
    try {
      return native.listGroups(handle)
    } catch (err) {
      throw fromNative(err)
    }
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
    const subscription = { native: null, active: true, off: null }
    const deliver = () => {
      if (!subscription.active) return
      const events = JSON.parse(native.drainEvents(subscription.native))
      for (const event of events) {
        if (!subscription.active) return
        this._callListener(listener, condition, event)
      }
    }
    const subscribe = (handle) => {
      if (subscription.active) subscription.native = native.subscribe(handle, group ?? null, key ?? null, deliver)
    }
    if (this._handle !== null) {
      try {
        subscribe(this._handle)
      } catch (err) {
        throw fromNative(err)
      }
    } else if (this._closed || this._opening === null) {
      throw makeError('CLOSED', 'the store is closed')
    } else {
      // Still opening: subscribe once open, before any queued call writes.
      this._opening.then(() => this._handle !== null && subscribe(this._handle)).catch(() => {})
    }
    subscription.off = () => {
      if (!subscription.active) return
      subscription.active = false
      this._subscriptions.delete(subscription)
      // The native callback holds `deliver`, which holds this subscription: let go of the
      // native side here, or neither could ever be collected.
      const subscribed = subscription.native
      subscription.native = null
      if (subscribed !== null) native.unsubscribe(subscribed)
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
    const handle = this._handle
    this._handle = null
    this._cache.clear()
    if (handle === null) return
    let error = null
    try {
      native.close(handle)
    } catch (err) {
      error = fromNative(err)
    }
    if (this._acks !== null) this._acks.closed(error)
    if (error !== null) throw error
  }
}

module.exports = { StateManager, StateError }
