'use strict'
// The Redis backend: a store shared by every process (and machine) that opens the same Redis
// with the same prefix. The store itself lives in the Rust core (crates/stepstate-core/src/
// store/redis): atomic updates by compare-and-set with the core's op engine, expiry by the
// server's clock, change events recorded in a stream by the same atomic step as each write. Its
// calls are async (src/redis.rs), so every method here returns a Promise; it answers the calls
// listed at the top of native.js. Like native.js it keeps a read cache of the values it read or
// wrote by their version (lib/cache.js), so that a value this manager holds already is neither
// handed to JavaScript nor parsed again. Errors leave here as coded errors (lib/errors.js).

const native = require('../../binding.js')
const { ValueCache, copyJson, updateResult } = require('../cache.js')
const { makeError, fromNative, describe } = require('../errors.js')
const { subscribeNative, unsubscribeNative } = require('./events.js')

/** Every key the store uses starts with this, unless `prefix` says otherwise. */
const DEFAULT_PREFIX = 'stepstate:'
/** About how many change events the stream keeps for listeners that reconnect. */
const DEFAULT_EVENTS_KEPT = 100_000

function rethrow(err) {
  throw fromNative(err)
}

function parseOrNull(text) {
  return text === null ? null : JSON.parse(text)
}

/** The URL of the Redis to use: `url`, or one made of `host`, `port`, `username`, `password`,
 *  `db` and `tls`. */
function redisUrl(options) {
  const parts = ['host', 'port', 'username', 'password', 'db', 'tls'].filter((name) => options[name] !== undefined)
  if (options.url !== undefined) {
    if (typeof options.url !== 'string' || !/^rediss?:\/\//.test(options.url)) {
      throw makeError('INVALID_ARGUMENT', `url must be a redis:// or rediss:// URL, got ${describe(options.url)}`)
    }
    if (parts.length > 0 && !(parts.length === 1 && parts[0] === 'tls' && isTlsObject(options.tls))) {
      throw makeError('INVALID_ARGUMENT', `give either url or ${parts.join('/')}, not both`)
    }
    return options.url
  }
  const host = options.host === undefined ? '127.0.0.1' : options.host
  if (typeof host !== 'string' || host.length === 0) {
    throw makeError('INVALID_ARGUMENT', `host must be a non-empty string, got ${describe(host)}`)
  }
  const port = options.port === undefined ? 6379 : options.port
  if (!Number.isInteger(port) || port <= 0 || port > 65535) {
    throw makeError('INVALID_ARGUMENT', `port must be a TCP port number, got ${describe(port)}`)
  }
  const db = options.db === undefined ? 0 : options.db
  if (!Number.isInteger(db) || db < 0) {
    throw makeError('INVALID_ARGUMENT', `db must be a database number, got ${describe(db)}`)
  }
  for (const name of ['username', 'password']) {
    if (options[name] !== undefined && typeof options[name] !== 'string') {
      throw makeError('INVALID_ARGUMENT', `${name} must be a string, got ${describe(options[name])}`)
    }
  }
  if (options.tls !== undefined && typeof options.tls !== 'boolean' && !isTlsObject(options.tls)) {
    throw makeError('INVALID_ARGUMENT', `tls must be true, false or { ca }, got ${describe(options.tls)}`)
  }
  const user = options.username === undefined ? '' : encodeURIComponent(options.username)
  const password = options.password === undefined ? '' : `:${encodeURIComponent(options.password)}`
  const credentials = user || password ? `${user}${password}@` : ''
  const hostPart = host.includes(':') ? `[${host}]` : host
  return `${options.tls ? 'rediss' : 'redis'}://${credentials}${hostPart}:${port}/${db}`
}

function isTlsObject(tls) {
  return tls !== null && typeof tls === 'object' && !Array.isArray(tls)
}

/** The certificate authority (PEM) a `rediss://` server must be signed by: `tls.ca`, or none
 *  (the system's). */
function tlsAuthority(options) {
  if (!isTlsObject(options.tls) || options.tls.ca === undefined) return null
  const ca = options.tls.ca
  if (typeof ca === 'string') return ca
  if (ca instanceof Uint8Array) return Buffer.from(ca.buffer, ca.byteOffset, ca.byteLength).toString('utf8')
  throw makeError('INVALID_ARGUMENT', `tls.ca must be a PEM string, Buffer or Uint8Array, got ${describe(ca)}`)
}

/** The Redis store's own options (`url` or its parts, `prefix`, `commandTimeout`, `eventsKept`),
 *  checked. */
function redisSettings(options) {
  const url = redisUrl(options)
  const prefix = options.prefix === undefined ? DEFAULT_PREFIX : options.prefix
  if (typeof prefix !== 'string') {
    throw makeError('INVALID_ARGUMENT', `prefix must be a string, got ${describe(prefix)}`)
  }
  const commandTimeout = options.commandTimeout === undefined ? 5000 : options.commandTimeout
  if (typeof commandTimeout !== 'number' || !Number.isFinite(commandTimeout) || commandTimeout <= 0) {
    throw makeError('INVALID_ARGUMENT', `commandTimeout must be a positive number of milliseconds, got ${describe(commandTimeout)}`)
  }
  const eventsKept = options.eventsKept === undefined ? DEFAULT_EVENTS_KEPT : options.eventsKept
  if (!Number.isSafeInteger(eventsKept) || eventsKept <= 0) {
    throw makeError('INVALID_ARGUMENT', `eventsKept must be a positive whole number of events, got ${describe(eventsKept)}`)
  }
  return { url, prefix, commandTimeout, eventsKept, tlsCa: tlsAuthority(options) }
}

/** A store on a Redis server. */
class RedisBackend {
  constructor(settings, options) {
    this.settings = settings
    this.redis = redisSettings(options)
    this.id = 0 // the native store's number once open
    // The writes of this manager still in progress, by their order of starting (`writeCount`):
    // events are delivered only after the writes in progress when they arrived have settled,
    // so that a listener never hears of a write before that write's own promise resolved (the
    // event and the reply reach this process on different connections, in either order).
    // `heldEvents`: [last write started, drain, ...] of the event batches waiting for them.
    this.writing = new Set()
    this.writeCount = 0
    this.heldEvents = []
    // The calls started and not yet completed, by number (see `call`), and the native queue of
    // their outcomes: one wake-up of this thread delivers every outcome waiting.
    this.pending = new Map()
    this.nextCall = 0
    this.completions = null
    // Started calls wait in the native queue until the end of the turn that started them, and
    // then go to the runtime together (see redisFlush in src/redis.rs).
    this.flushQueued = false
    this.flush = () => {
      this.flushQueued = false
      if (this.completions !== null) native.redisFlush(this.completions)
    }
    this.closed = false
    // Values this manager read or wrote, by the version Redis gave them (see lib/cache.js): a
    // call passes the version it holds, and the store answers `true` instead of sending a
    // value this manager already has parsed, whoever wrote in between.
    this.cache = new ValueCache(settings.cacheBytes)
  }

  /**
   * A Promise of one native call: `start(completions, call)` starts it under the number
   * `call`; its answer settles the Promise through `finish(text, version, length)`: the text
   * (null: none; `true`: the value of the version the call said it holds), the version of the
   * item read or written and the length of its stored text. `write`: whether it changes the
   * store (see `writing`).
   */
  call(start, finish, write = false) {
    return new Promise((resolve, reject) => {
      const call = (this.nextCall = (this.nextCall + 1) >>> 0)
      try {
        start(this.completions, call)
      } catch (err) {
        reject(fromNative(err))
        return
      }
      if (!this.flushQueued) {
        this.flushQueued = true
        queueMicrotask(this.flush)
      }
      // Calls in flight keep the process alive, as any pending I/O does.
      if (this.pending.size === 0) native.redisHold(this.completions, true)
      let order = 0
      if (write) {
        order = ++this.writeCount
        this.writing.add(order)
      }
      this.pending.set(call, { resolve, reject, finish, write: order })
    })
  }

  /** Settles the calls whose outcomes wait in the native queue: `[numbers, ...texts]`, with
   *  `[call, answer, version, length]` per outcome in `numbers` (answer: 0 none, 1 the value of
   *  the version the call said it holds, 2 the next text, 3 the next text is an error's). */
  complete() {
    const done = native.redisDrain(this.completions)
    const numbers = done[0]
    const pending = this.pending
    let next = 1
    for (let i = 0; i < numbers.length; i += 4) {
      const kind = numbers[i + 1]
      const answer = kind === 0 ? null : kind === 1 ? true : done[next++]
      const call = pending.get(numbers[i])
      if (call === undefined) continue
      pending.delete(numbers[i])
      if (call.write !== 0) this.writing.delete(call.write)
      if (kind === 3) {
        call.reject(fromNative({ message: answer }))
        continue
      }
      let value
      try {
        value = call.finish(answer, numbers[i + 2], numbers[i + 3])
      } catch (err) {
        call.reject(err)
        continue
      }
      call.resolve(value)
    }
    if (this.heldEvents.length > 0) this.releaseEvents()
    if (pending.size === 0) {
      native.redisHold(this.completions, false)
      if (this.closed) this.release()
    }
  }

  /** Lets go of the native completion callback (it holds this backend): after close, once
   *  nothing is in flight. */
  release() {
    if (this.completions !== null) native.redisRelease(this.completions)
  }

  /** Delivers, on a later turn of the event loop, the event batches held for writes that have
   *  all settled now (`writing` iterates in order of starting: its first is the oldest). */
  releaseEvents() {
    const held = this.heldEvents
    const oldest = this.writing.size === 0 ? Infinity : this.writing.values().next().value
    let done = 0
    while (done < held.length && held[done] < oldest) {
      setImmediate(held[done + 1])
      done += 2
    }
    if (done > 0) held.splice(0, done)
  }

  open() {
    const { url, prefix, commandTimeout, eventsKept, tlsCa } = this.redis
    const { maxValueBytes, defaultTtlMs } = this.settings
    return native.redisOpen(url, prefix, commandTimeout, maxValueBytes, defaultTtlMs, eventsKept, tlsCa).then((id) => {
      this.id = id
      this.completions = native.redisCompletions(id, () => this.complete())
    }, rethrow)
  }

  /**
   * After a read or write of `value` at `version` (`cached`: the item's cache entry when the
   * call was made), keeps a private copy of it when the key was used before, soon (a first use
   * leaves a mark, see ValueCache). Returns what the caller may have: `value` itself, or with
   * `owned` (a value just parsed), a copy when the cache took it.
   */
  keep(group, key, cached, value, textBytes, version, owned = false) {
    const cache = this.cache
    if (cached === undefined) {
      cache.markItem(group, key)
      return value
    }
    return cache.keepValue(group, key, version, value, textBytes, owned)
  }

  // A call's answer is `true` only when the item was still at the version the call passed:
  // no write came between, so the entry it read then still holds that value.

  set(group, key, text, value, ttlMs) {
    const cached = this.cache.item(group, key)
    const known = this.cache.versionOf(cached)
    return this.call(
      (completions, call) => native.redisSetStart(this.id, completions, call, group, key, text, ttlMs, known),
      (old, version, length) => {
        // The write that replaces the cached value hands it out as the old one.
        const oldValue = old === true ? cached.value : parseOrNull(old)
        this.keep(group, key, cached, value, length, version)
        return { new_value: value, old_value: oldValue }
      },
      true,
    )
  }

  get(group, key) {
    const cached = this.cache.item(group, key)
    const known = this.cache.versionOf(cached)
    return this.call(
      (completions, call) => native.redisGetStart(this.id, completions, call, group, key, known),
      (text, version, length) => {
        if (text === true) return copyJson(cached.value)
        if (text === null) {
          this.cache.dropItem(group, key)
          return null
        }
        return this.keep(group, key, cached, JSON.parse(text), length, version, true)
      },
    )
  }

  update(group, key, opsText) {
    const cached = this.cache.item(group, key)
    const known = this.cache.versionOf(cached)
    return this.call(
      (completions, call) => native.redisUpdateStart(this.id, completions, call, group, key, opsText, known),
      (text, version, length) => updateResult(this, group, key, cached, text, version, length),
      true,
    )
  }

  delete(group, key) {
    const cached = this.cache.item(group, key)
    const known = this.cache.versionOf(cached)
    return this.call(
      (completions, call) => native.redisDeleteStart(this.id, completions, call, group, key, known),
      (text) => {
        this.cache.dropItem(group, key)
        return text === true ? cached.value : parseOrNull(text)
      },
      true,
    )
  }

  clear(group) {
    return this.call(
      (completions, call) => native.redisClearStart(this.id, completions, call, group),
      () => {
        this.cache.forget(group)
        return undefined
      },
      true,
    )
  }

  /** `read` 'values', 'entries' or 'keys' of the whole group, parsed. */
  readGroup(group, read) {
    return this.call((completions, call) => native.redisReadGroupStart(this.id, completions, call, group, read), JSON.parse)
  }

  getGroup(group) {
    return this.readGroup(group, 'values')
  }

  entries(group) {
    return this.readGroup(group, 'entries')
  }

  keys(group) {
    return this.readGroup(group, 'keys')
  }

  listGroups() {
    return native.redisListGroups(this.id).catch(rethrow)
  }

  /** As native.js: events arrive in parsed batches, here from every process on the prefix,
   *  each batch on a later turn of the event loop than the replies of the writes it follows. */
  subscribe(group, key, deliver) {
    const schedule = (drain) => {
      if (this.writing.size === 0) setImmediate(drain)
      else this.heldEvents.push(this.writeCount, drain)
    }
    return subscribeNative((ready) => native.redisSubscribe(this.id, group, key, ready), deliver, schedule)
  }

  unsubscribe(subscription) {
    unsubscribeNative(subscription)
  }

  /** Stops following events and drops the connections; returns at once, even while Redis is down. */
  close() {
    this.cache.clear()
    // The calls started before close go to the runtime first, as they would have without it.
    if (this.completions !== null) native.redisFlush(this.completions)
    if (this.id !== 0) native.redisClose(this.id)
    if (!this.closed) {
      this.closed = true
      if (this.pending.size === 0) this.release()
    }
    return undefined
  }
}

module.exports = { RedisBackend }
