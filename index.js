'use strict'
// The public face of stepstate: `StateManager` over the native binding.
//
// Every method is an `async` wrapper around one synchronous native call: values cross as JSON
// text (JSON.stringify here, JSON.parse of the returned text), so a call never hops threads and
// never converts values field by field. Native errors arrive as `code \x1f opIndex \x1f message`
// and are rebuilt here into `StateError` (or `TypeError` for bad arguments) with a `code`.

const { EventEmitter } = require('node:events')
const native = require('./binding.js')

const ERROR_FIELD_SEPARATOR = '\u001f'

/** An error of the store; `code` is stable, `opIndex` names the failing op of an update. */
class StateError extends Error {
  constructor(code, message, opIndex) {
    super(message)
    this.name = 'StateError'
    this.code = code
    if (opIndex !== undefined) this.opIndex = opIndex
  }
}

function makeError(code, message, opIndex) {
  if (code === 'INVALID_ARGUMENT') {
    const err = new TypeError(message)
    err.code = code
    return err
  }
  return new StateError(code, message, opIndex)
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
  if (typeof value === 'string') return 'an empty string'
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
    throw makeError('INVALID_VALUE', `${action} ${itemName(group, key)}: value is not JSON: ${err.message}`)
  }
  if (text === undefined || (typeof value === 'number' && !Number.isFinite(value))) {
    throw makeError('INVALID_VALUE', `${action} ${itemName(group, key)}: ${describe(value)} is not a JSON value`)
  }
  return text
}

function isNonJsonNumber(value) {
  return typeof value === 'number' && !Number.isFinite(value)
}

/** JSON text of an op list. JSON.stringify would turn NaN into null and drop functions
 *  silently, so top-level op values that are not JSON are rejected here with their index. */
function serializeOps(ops, group, key) {
  if (!Array.isArray(ops)) {
    throw makeError('INVALID_ARGUMENT', `update ${itemName(group, key)}: ops must be an array, got ${describe(ops)}`)
  }
  const opError = (index, what) =>
    makeError('INVALID_OP', `update ${itemName(group, key)}: op ${index}: ${what}`, index)
  for (let index = 0; index < ops.length; index++) {
    const op = ops[index]
    if (op === null || typeof op !== 'object') continue // the engine names what is wrong
    const value = op.value
    if (isNonJsonNumber(value) || typeof value === 'function' || typeof value === 'symbol' || typeof value === 'bigint') {
      throw opError(index, `value ${describe(value)} is not a JSON value`)
    }
    if (isNonJsonNumber(op.by)) throw opError(index, `by must be a finite number, got ${op.by}`)
  }
  try {
    return JSON.stringify(ops)
  } catch (err) {
    for (let index = 0; index < ops.length; index++) {
      try {
        JSON.stringify(ops[index])
      } catch (inner) {
        throw opError(index, `not JSON: ${inner.message}`)
      }
    }
    throw opError(0, `not JSON: ${err.message}`)
  }
}

function parseOrNull(text) {
  return text == null ? null : JSON.parse(text)
}

const ADAPTERS = new Set(['memory'])

function openNative(options) {
  if (options === null || typeof options !== 'object') {
    throw makeError('INVALID_ARGUMENT', `options must be an object, got ${describe(options)}`)
  }
  const adapter = options.adapter === undefined ? 'memory' : options.adapter
  if (!ADAPTERS.has(adapter)) {
    const name = typeof adapter === 'string' ? JSON.stringify(adapter) : describe(adapter)
    throw makeError('INVALID_ARGUMENT', `adapter ${name} is not available; use one of: ${[...ADAPTERS].join(', ')}`)
  }
  const maxValueBytes = options.maxValueBytes === undefined ? 0 : options.maxValueBytes
  if (!Number.isSafeInteger(maxValueBytes) || maxValueBytes < 0) {
    throw makeError('INVALID_ARGUMENT', `maxValueBytes must be a positive integer, got ${describe(maxValueBytes)}`)
  }
  const defaultTtlMs = options.ttl === undefined ? 0 : ttlMillis(options.ttl, 'options.ttl')
  return native.openMemory(maxValueBytes, defaultTtlMs)
}

/** A TTL in seconds (fractions allowed) as whole milliseconds, at least 1. */
function ttlMillis(ttl, what) {
  if (typeof ttl !== 'number' || !Number.isFinite(ttl) || ttl <= 0) {
    throw makeError('INVALID_ARGUMENT', `${what} must be a positive number of seconds, got ${describe(ttl)}`)
  }
  return Math.max(1, Math.ceil(ttl * 1000))
}

function checkFilter(filter) {
  if (filter === undefined) return {}
  if (filter === null || typeof filter !== 'object') {
    throw makeError('INVALID_ARGUMENT', `filter must be an object, got ${describe(filter)}`)
  }
  if (filter.group !== undefined) checkName('filter.group', filter.group)
  if (filter.key !== undefined) checkName('filter.key', filter.key)
  if (filter.condition !== undefined && typeof filter.condition !== 'function') {
    throw makeError('INVALID_ARGUMENT', 'filter.condition must be a function')
  }
  return filter
}

/**
 * Grouped key-value state. Every method returns a Promise; see README.md for the contract.
 */
class StateManager extends EventEmitter {
  /** Opens a store and resolves once it is ready. */
  static async open(options = {}) {
    return new StateManager(options)
  }

  constructor(options = {}) {
    super()
    this._handle = openNative(options)
    this._closed = false
    this._subscriptions = new Set()
  }

  async set(group, key, value, opts) {
    checkName('group', group)
    checkName('key', key)
    if (opts !== undefined && (opts === null || typeof opts !== 'object')) {
      throw makeError('INVALID_ARGUMENT', `set ${itemName(group, key)}: options must be an object`)
    }
    const ttlMs = opts === undefined || opts.ttl === undefined ? -1 : ttlMillis(opts.ttl, 'opts.ttl')
    const text = serialize(value, 'set', group, key)
    let old
    try {
      old = native.set(this._handle, group, key, text, ttlMs)
    } catch (err) {
      throw fromNative(err)
    }
    return { new_value: JSON.parse(text), old_value: parseOrNull(old) }
  }

  async get(group, key) {
    checkName('group', group)
    checkName('key', key)
    let text
    try {
      text = native.get(this._handle, group, key)
    } catch (err) {
      throw fromNative(err)
    }
    return parseOrNull(text)
  }

  async update(group, key, ops) {
    checkName('group', group)
    checkName('key', key)
    const text = serializeOps(ops, group, key)
    let pair
    try {
      pair = native.update(this._handle, group, key, text)
    } catch (err) {
      throw fromNative(err)
    }
    const [newValue, oldValue] = JSON.parse(pair)
    return { new_value: newValue, old_value: oldValue }
  }

  async delete(group, key) {
    checkName('group', group)
    checkName('key', key)
    let text
    try {
      text = native.delete(this._handle, group, key)
    } catch (err) {
      throw fromNative(err)
    }
    return parseOrNull(text)
  }

  async clear(group) {
    checkName('group', group)
    try {
      native.clear(this._handle, group)
    } catch (err) {
      throw fromNative(err)
    }
  }

  async getGroup(group) {
    checkName('group', group)
    try {
      return JSON.parse(native.getGroup(this._handle, group))
    } catch (err) {
      throw fromNative(err)
    }
  }

  async list(group) {
    return this.getGroup(group)
  }

  async entries(group) {
    checkName('group', group)
    try {
      return JSON.parse(native.entries(this._handle, group))
    } catch (err) {
      throw fromNative(err)
    }
  }

  async keys(group) {
    checkName('group', group)
    try {
      return JSON.parse(native.keys(this._handle, group))
    } catch (err) {
      throw fromNative(err)
    }
  }

  async listGroups() {
    try {
      return native.listGroups(this._handle)
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
    try {
      subscription.native = native.subscribe(this._handle, group ?? null, key ?? null, deliver)
    } catch (err) {
      throw fromNative(err)
    }
    subscription.off = () => {
      if (!subscription.active) return
      subscription.active = false
      this._subscriptions.delete(subscription)
      native.unsubscribe(subscription.native)
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
      off()
      if (waiting !== null) {
        waiting({ value: undefined, done: true })
        waiting = null
      }
      return Promise.resolve({ value: undefined, done: true })
    }
    const iterator = {
      next: () => {
        if (buffered.length > 0) return Promise.resolve({ value: buffered.shift(), done: false })
        if (finished || this._closed) return Promise.resolve({ value: undefined, done: true })
        return new Promise((resolve) => {
          waiting = resolve
        })
      },
      return: finish,
      [Symbol.asyncIterator]() {
        return iterator
      },
    }
    this._watchers = this._watchers || new Set()
    this._watchers.add(finish)
    return iterator
  }

  async close() {
    if (this._closed) return
    this._closed = true
    for (const subscription of [...this._subscriptions]) subscription.off()
    if (this._watchers) for (const finish of this._watchers) finish()
    native.close(this._handle)
  }
}

module.exports = { StateManager, StateError }
