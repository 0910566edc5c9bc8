'use strict'
// The in-process backend: memory and file stores, through the native binding (binding.js).
//
// It owns what only an in-process store has: the native handle (a memory store opens at once,
// a file store recovers on the thread pool through `openFile`), the file store's options, the
// manager's read cache (lib/cache.js, keyed by the engine's versions), and the acknowledgements
// of `sync: 'always'` writes. Every storage call is one synchronous native call, so its methods
// return their result directly; only a write that waits for the disk returns a Promise. Errors
// leave here as coded errors (lib/errors.js).
//
// The methods, as `StateManager` (index.js) calls them once its checks pass: each returns its
// result, or a Promise of it, which the manager returns as is (an `async` method adopts either,
// so the synchronous path costs no extra tick). Another backend (Redis, a user's adapter)
// answers the same calls with Promises:
//   open()                              undefined once ready, or a Promise that resolves then
//   set(group, key, text, value, ttlMs) { new_value: value, old_value }; `text` is
//                                       JSON.stringify(value), `ttlMs` -1 for the store's default
//   get(group, key)                     a fresh copy of the value, or null
//   update(group, key, opsText)         { new_value, old_value }
//   delete(group, key)                  the old value, or null
//   clear(group)                        undefined
//   getGroup(group)                     the values, in insertion order
//   entries(group) / keys(group)        [{ key, value }] / the keys, in insertion order
//   listGroups()                        sorted names of the non-empty groups
//   subscribe(group, key, deliver)      a subscription; `deliver(events)` is called with each
//                                       batch of committed changes (group/key null: any)
//   unsubscribe(subscription)           stops delivery; idempotent
//   close()                             flushes and releases the store; undefined or a Promise

const native = require('../../binding.js')
const { ValueCache, copyJson, updateResult } = require('../cache.js')
const { makeError, fromNative, describe } = require('../errors.js')
const { subscribeNative, unsubscribeNative } = require('./events.js')

/**
 * What the last native call of this thread reports beside its result (src/status.rs): the
 * version it read or wrote, the length of an update's new text, whether the item had been
 * used before since it was created, a write's journal ticket, and whether an update answered
 * with the name of the one member it changed, whose new value is then the number in NUMBER.
 * Read right after the call.
 */
const status = native.callStatus()
const VERSION = 0
const LENGTH = 1
const REUSED = 2
const TICKET = 3
const ANSWER = 4
const NUMBER = 5
/** ANSWER: the update's answer is the name of the one member it changed, to NUMBER. */
const ONE_NUMBER = 1
/** ANSWER from this on: that name is the string at index ANSWER - KEPT_NAME of memberNames. */
const KEPT_NAME = 2
/** The member names this thread's updates answered with before, kept by the binding
 *  (src/names.rs): an update that answers with one of them gives its index. */
const memberNames = native.memberNames()

// The per-item calls, read off the binding once: its exports object has many properties,
// which V8 keeps in a dictionary, slower to look a name up in on every call.
const { set: nativeSet, get: nativeGet, update: nativeUpdate, delete: nativeDelete } = native

/** How a file store's log reaches the disk (README, "Durability"); the binding maps the same
 *  names (src/options.rs). */
const SYNC_POLICIES = ['always', 'everysec', 'no']
const DEFAULT_SYNC_POLICY = 'everysec'

/** The file store's own options (`path`, `sync`, `compactMinBytes`), checked, with defaults. */
function fileSettings(options) {
  const path = options.path === undefined ? '.stepstate' : options.path
  if (typeof path !== 'string' || path.length === 0) {
    throw makeError('INVALID_ARGUMENT', `path must be a non-empty string (a directory), got ${describe(path)}`)
  }
  const sync = options.sync === undefined ? DEFAULT_SYNC_POLICY : options.sync
  if (!SYNC_POLICIES.includes(sync)) {
    throw makeError('INVALID_ARGUMENT', `sync must be one of ${SYNC_POLICIES.join(', ')}, got ${describe(sync)}`)
  }
  const compactMinBytes = options.compactMinBytes === undefined ? 0 : options.compactMinBytes
  if (!Number.isSafeInteger(compactMinBytes) || compactMinBytes < 0) {
    throw makeError('INVALID_ARGUMENT', `compactMinBytes must be a positive integer, got ${describe(compactMinBytes)}`)
  }
  return { path, sync, compactMinBytes }
}

function parseOrNull(text) {
  return text == null ? null : JSON.parse(text)
}

/**
 * Acknowledgements of `sync: 'always'` writes: a write's promise resolves (with the write's
 * result) once the log's sync thread reports a durable ticket at least as large as the write's.
 * While any write waits, the notification callback keeps the process alive; otherwise it does not.
 */
class DurableAcks {
  constructor(handle) {
    this.acked = 0
    this.pending = [] // ticket, resolve, reject, result, ticket, resolve, reject, result, ...
    this.failure = null
    this.keepingAlive = false
    this.watch = native.watchDurable(handle, (ticket) => this.reached(ticket))
  }

  /** `result`, or a Promise of it once the write of `ticket` is on disk. */
  wait(ticket, result) {
    if (this.failure !== null) return Promise.reject(this.failure)
    if (ticket <= this.acked) return result
    return new Promise((resolve, reject) => {
      this.pending.push(ticket, resolve, reject, result)
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
      this.pending[done + 1](this.pending[done + 3])
      done += 4
    }
    if (done > 0) this.pending.splice(0, done)
    if (this.pending.length === 0) this.keepAlive(false)
  }

  fail(err) {
    this.failure = err
    for (let i = 0; i < this.pending.length; i += 4) this.pending[i + 2](err)
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

/** A memory or file store of this process. */
class NativeBackend {
  /**
   * `settings`: the generic options as index.js checked them (`adapter`, `maxValueBytes`,
   * `defaultTtlMs`, `cacheBytes`); `options`: the caller's, for the file store's own.
   */
  constructor(settings, options) {
    this.settings = settings
    this.file = settings.adapter === 'file' ? fileSettings(options) : null
    this.handle = null // the native handle once open; kept after close, so calls fail CLOSED
    this.cache = new ValueCache(settings.cacheBytes)
    this.acks = null // DurableAcks of a `sync: 'always'` store
  }

  open() {
    const { maxValueBytes, defaultTtlMs } = this.settings
    if (this.file === null) {
      this.handle = native.openMemory(maxValueBytes, defaultTtlMs)
      return undefined
    }
    const { path, sync, compactMinBytes } = this.file
    return native.openFile(path, sync, maxValueBytes, defaultTtlMs, compactMinBytes).then(
      (handle) => {
        this.handle = handle
        // The store's policy, which the first manager to open this directory chose.
        if (native.syncPolicy(handle) === 'always') this.acks = new DurableAcks(handle)
      },
      (err) => {
        throw fromNative(err)
      },
    )
  }

  /** The result, or a Promise of it once the write this thread just journaled is on disk. */
  acknowledged(result) {
    return this.acks === null ? result : this.acks.wait(status[TICKET], result)
  }

  /**
   * After a read or write of `value` at `version` (`cached`: the item's cache entry before it),
   * keeps a private copy of it in the cache when the key was used again, soon (see ValueCache:
   * a key used once leaves nothing, one used again a mark, one marked its value). Returns what
   * the caller may have: `value` itself, or with `owned` (a value just parsed), the value when
   * the cache took it and a copy then.
   */
  keep(group, key, cached, value, textBytes, version, owned = false) {
    const cache = this.cache
    // A key whose value is cached is in use: only the others need the engine's word.
    if (cached === undefined || cached.value === undefined) {
      if (status[REUSED] === 0) {
        if (cached !== undefined) cache.dropItem(group, key)
        return value
      }
      if (cached === undefined) {
        cache.markItem(group, key)
        return value
      }
    }
    return cache.keepValue(group, key, version, value, textBytes, owned)
  }

  set(group, key, text, value, ttlMs) {
    const cache = this.cache
    const cached = cache.item(group, key)
    let old
    try {
      old = nativeSet(this.handle, group, key, text, ttlMs, cache.versionOf(cached))
    } catch (err) {
      throw fromNative(err)
    }
    const oldValue = old === true ? cached.value : parseOrNull(old)
    this.keep(group, key, cached, value, text.length, status[VERSION])
    return this.acknowledged({ new_value: value, old_value: oldValue })
  }

  get(group, key) {
    const cache = this.cache
    const cached = cache.item(group, key)
    let text
    try {
      text = nativeGet(this.handle, group, key, cache.versionOf(cached))
    } catch (err) {
      throw fromNative(err)
    }
    if (text === true) return copyJson(cached.value)
    if (text === null) {
      if (cached !== undefined) cache.dropItem(group, key)
      return null
    }
    const value = JSON.parse(text)
    // Unless the cache keeps it, the caller gets the parsed value itself.
    return this.keep(group, key, cached, value, text.length, status[VERSION], true)
  }

  update(group, key, opsText) {
    const cache = this.cache
    const cached = cache.item(group, key)
    let pair
    try {
      pair = nativeUpdate(this.handle, group, key, opsText, cache.versionOf(cached))
    } catch (err) {
      throw fromNative(err)
    }
    const answer = status[ANSWER]
    if (answer >= KEPT_NAME) pair = memberNames[answer - KEPT_NAME]
    const number = answer >= ONE_NUMBER ? status[NUMBER] : undefined
    return this.acknowledged(updateResult(this, group, key, cached, pair, status[VERSION], status[LENGTH], number))
  }

  delete(group, key) {
    const cache = this.cache
    const cached = cache.item(group, key)
    let text
    try {
      text = nativeDelete(this.handle, group, key, cache.versionOf(cached))
    } catch (err) {
      throw fromNative(err)
    }
    if (cached !== undefined) cache.dropItem(group, key)
    if (text === null) return null
    return this.acknowledged(text === true ? cached.value : JSON.parse(text))
  }

  clear(group) {
    let removed
    try {
      removed = native.clear(this.handle, group)
    } catch (err) {
      throw fromNative(err)
    }
    this.cache.forget(group)
    return removed > 0 ? this.acknowledged(undefined) : undefined
  }

  getGroup(group) {
    // A group's values are cached from the second read of one version on, so that a group
    // read once after each write pays no copy on top of the parse.
    const cache = this.cache
    const cached = cache.group(group)
    let text
    try {
      text = native.getGroup(this.handle, group, cached === undefined ? 0 : cached.version)
      if (text === true && cached.values === null) text = native.getGroup(this.handle, group, 0)
    } catch (err) {
      throw fromNative(err)
    }
    if (text === true) return copyJson(cached.values)
    const values = JSON.parse(text)
    const version = status[VERSION]
    if (cached === undefined || cached.version !== version) {
      cache.putGroup(group, version, null, 0)
      return values
    }
    cache.putGroup(group, version, values, text.length)
    return copyJson(values)
  }

  entries(group) {
    try {
      return JSON.parse(native.entries(this.handle, group))
    } catch (err) {
      throw fromNative(err)
    }
  }

  keys(group) {
    try {
      return JSON.parse(native.keys(this.handle, group))
    } catch (err) {
      throw fromNative(err)
    }
  }

  listGroups() {
    try {
      return native.listGroups(this.handle)
    } catch (err) {
      throw fromNative(err)
    }
  }

  /**
   * Subscribes to the changes of `group`/`key` (null: any): the native side calls back, on a
   * later turn of the event loop, whenever events wait, and they are drained and delivered as
   * one parsed batch. Nothing is drained once unsubscribed.
   */
  subscribe(group, key, deliver) {
    return subscribeNative((ready) => native.subscribe(this.handle, group, key, ready), deliver)
  }

  unsubscribe(subscription) {
    unsubscribeNative(subscription)
  }

  /** Closes the handle (the last one of a file store flushes it and releases its directory). */
  close() {
    this.cache.clear()
    if (this.handle === null) return undefined
    let error = null
    try {
      native.close(this.handle)
    } catch (err) {
      error = fromNative(err)
    }
    if (this.acks !== null) this.acks.closed(error)
    if (error !== null) throw error
    return undefined
  }
}

module.exports = { NativeBackend }
