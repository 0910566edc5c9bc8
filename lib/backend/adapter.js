'use strict'
// The backend of a user's own store: `new StateManager({ adapter: obj })`, where `obj`
// implements `StateAdapter` (index.d.ts): async `get`, `set`, `delete`, `entries`, `clear` and
// `listGroups`, and optionally `close`. The adapter only stores; everything else is here:
//
// - Atomicity: every write of one key (set, update, delete, an expiry) waits in line behind
//   the previous one in this process (a chain of promises per key), and `clear(group)` waits for
//   every write of its group in line and holds back the writes that come after it. So an
//   `update` reads, computes and writes back with no other write of its key in between. A
//   `get` waits for the writes of its key made before it, and a read of a whole group takes
//   the group's line as a clear does: each call sees what was made before it, as in memory.
// - Ops: `update` computes the new value with the core's op engine (`applyOps` in src/ops.rs,
//   the same rules and error codes as every store); JavaScript has no op engine of its own.
// - TTL: an item that expires is stored in an envelope (see ENVELOPE below) that carries its
//   expiry, so a persistent adapter keeps it across restarts. Expired items are invisible to
//   every read at once; a sweep (an unref'd timer) removes them and fires their events.
// - Change events, made here after each write the adapter acknowledged, delivered on a later
//   turn of the event loop (after the write's own promise resolved), per key in commit order.
// - Errors: whatever the adapter throws or rejects becomes a StateError with code
//   `BACKEND_UNAVAILABLE` and the adapter's error as `cause`. A write the adapter refused is not
//   reported as done, and fires no event.
//
// It answers the calls listed at the top of native.js, with Promises.

const native = require('../../binding.js')
const { makeError, fromNative, reason, describe } = require('../errors.js')

/** The methods every adapter has; `close` is optional. */
const ADAPTER_METHODS = ['get', 'set', 'delete', 'entries', 'clear', 'listGroups']

/** The longest group or key, in bytes of UTF-8, as for every store (write.rs MAX_NAME_BYTES). */
const MAX_NAME_BYTES = 1024

/**
 * ENVELOPE: how a value with an expiry is handed to the adapter. A value that never expires is
 * stored as it is. One with an expiry is stored as
 *
 *     { "$stepstate": { "expiresAt": 1767225600000 }, "value": <the value> }
 *
 * (`expiresAt`: milliseconds since the Unix epoch, the item is gone from that moment on). A
 * stored object with a `$stepstate` member is always read as an envelope, so a value that has a
 * top-level `$stepstate` member of its own is stored wrapped too, with `"$stepstate": {}`; so is
 * the value `null`, since an adapter's `get`, `set` and `delete` answer `null` for "absent".
 * Whatever else the adapter holds reads back as it is (values stored before, by other code).
 */
const ENVELOPE = '$stepstate'

/** How often the sweep looks for items due to expire, in milliseconds. */
const SWEEP_INTERVAL_MS = 100

function isEnvelope(stored) {
  return typeof stored === 'object' && stored !== null && !Array.isArray(stored) && Object.hasOwn(stored, ENVELOPE)
}

/** What the adapter is given to store: `value` itself, or its envelope. */
function wrap(value, expiresAt) {
  if (expiresAt > 0) return { [ENVELOPE]: { expiresAt }, value }
  if (value === null || isEnvelope(value)) return { [ENVELOPE]: {}, value }
  return value
}

function itemName(group, key) {
  return `${JSON.stringify(group)}/${JSON.stringify(key)}`
}

function checkNameLength(what, name) {
  const bytes = Buffer.byteLength(name)
  if (bytes > MAX_NAME_BYTES) {
    throw makeError('INVALID_ARGUMENT', `${what} is ${bytes} bytes long; at most ${MAX_NAME_BYTES} bytes are allowed`)
  }
}

function checkItem(group, key) {
  checkNameLength('group', group)
  checkNameLength('key', key)
}

/** An error of the adapter, as the caller gets it. */
function adapterFailed(what, message, cause) {
  return makeError('BACKEND_UNAVAILABLE', `${what}: the adapter ${message}`, undefined, cause)
}

/**
 * A stored value as this backend reads it: `{ text, expiresAt }` (`text`: the value's JSON text,
 * a fresh copy of whatever the adapter holds; `expiresAt`: 0 = never), or null when absent.
 * `null` means absent, except in an entry (`listed`), where it can only be a bare null value.
 */
function unwrap(stored, what, listed = false) {
  if (stored === undefined || (stored === null && !listed)) return null
  let value = stored
  let expiresAt = 0
  if (isEnvelope(stored)) {
    const meta = stored[ENVELOPE]
    const at = meta === null || typeof meta !== 'object' ? undefined : meta.expiresAt
    if (at !== undefined && (typeof at !== 'number' || !Number.isFinite(at) || at <= 0)) {
      throw adapterFailed(what, `gave back an envelope whose expiresAt is ${describe(at)}, not a time in milliseconds`)
    }
    value = stored.value === undefined ? null : stored.value
    expiresAt = at === undefined ? 0 : at
  }
  let text
  try {
    text = JSON.stringify(value)
  } catch (err) {
    throw adapterFailed(what, `gave back a value that is not JSON: ${reason(err)}`, err)
  }
  if (text === undefined) throw adapterFailed(what, `gave back ${describe(value)}, which is not a JSON value`)
  return { text, expiresAt }
}

function isLive(item, now) {
  return item !== null && (item.expiresAt === 0 || item.expiresAt > now)
}

/** A store implemented by the user's `StateAdapter`. */
class AdapterBackend {
  constructor(settings) {
    const adapter = settings.adapter
    const missing = ADAPTER_METHODS.filter((name) => typeof adapter[name] !== 'function')
    if (missing.length > 0) {
      throw makeError('INVALID_ARGUMENT', `the adapter object lacks the method(s) ${missing.join(', ')} of StateAdapter`)
    }
    this.adapter = adapter
    this.settings = settings
    // item id (JSON of [group, key]) -> the promise of the last write of that key in line
    this.keyTails = new Map()
    // group -> { keys: number of writes in line, clear: the promise of its last clear in line }
    this.groupLines = new Map()
    // item id -> { group, key, expiresAt } of every item known to expire (written here, or
    // found by the scan at open)
    this.expiries = new Map()
    this.sweeper = null
    this.sweeping = false
    // Events committed and not yet delivered, and the subscriptions to deliver them to.
    this.pending = []
    this.flushScheduled = false
    this.sequence = 0
    this.subscriptions = new Set()
    this.closed = false
  }

  /** Calls the adapter's `method`; its error, thrown or rejected, becomes BACKEND_UNAVAILABLE. */
  async call(what, method, ...args) {
    try {
      return await this.adapter[method](...args)
    } catch (err) {
      throw adapterFailed(what, `${method} failed: ${reason(err)}`, err)
    }
  }

  /** Finds the items that expire among what the adapter holds (a persistent one keeps them
   *  across restarts), so that the sweep removes them on time. */
  async open() {
    const groups = await this.groupNames('open')
    for (const group of groups) {
      for (const { key, item } of await this.items(group, 'open')) {
        if (item.expiresAt > 0) this.expireAt(group, key, item.expiresAt)
      }
    }
  }

  // ---- the line of writes ----

  /** Runs `task` once every earlier write of `group`/`key` (and clear of `group`) is done. */
  inLine(group, key, task) {
    const id = JSON.stringify([group, key])
    const line = this.groupLine(group)
    const before = [this.keyTails.get(id), line.clear].filter((p) => p !== undefined)
    const run = before.length === 0 ? task() : Promise.allSettled(before).then(task)
    const tail = run.then(
      () => {},
      () => {},
    )
    this.keyTails.set(id, tail)
    line.keys.add(tail)
    tail.then(() => {
      if (this.keyTails.get(id) === tail) this.keyTails.delete(id)
      line.keys.delete(tail)
      this.dropIdleLine(group, line)
    })
    return run
  }

  /** The writes of `group`/`key` and clear of `group` in line now, settled (undefined: none). */
  writesBefore(group, key) {
    const tail = this.keyTails.get(JSON.stringify([group, key]))
    const clear = this.groupLines.get(group)?.clear
    if (tail === undefined && clear === undefined) return undefined
    return Promise.allSettled([tail, clear].filter((p) => p !== undefined))
  }

  /** Runs `task` once every write of `group` in line is done; later ones wait for it. */
  groupInLine(group, task) {
    const line = this.groupLine(group)
    const before = [...line.keys]
    if (line.clear !== undefined) before.push(line.clear)
    const run = before.length === 0 ? task() : Promise.allSettled(before).then(task)
    const tail = run.then(
      () => {},
      () => {},
    )
    line.clear = tail
    tail.then(() => {
      if (line.clear === tail) line.clear = undefined
      this.dropIdleLine(group, line)
    })
    return run
  }

  groupLine(group) {
    let line = this.groupLines.get(group)
    if (line === undefined) {
      line = { keys: new Set(), clear: undefined }
      this.groupLines.set(group, line)
    }
    return line
  }

  dropIdleLine(group, line) {
    if (line.keys.size === 0 && line.clear === undefined && this.groupLines.get(group) === line) {
      this.groupLines.delete(group)
    }
  }

  /** Every write settled: what `close` waits for. */
  settled() {
    const tails = [...this.keyTails.values()]
    for (const line of this.groupLines.values()) if (line.clear !== undefined) tails.push(line.clear)
    return Promise.allSettled(tails)
  }

  // ---- reads of the adapter ----

  async read(group, key, what) {
    return unwrap(await this.call(what, 'get', group, key), what)
  }

  /** The group's items as `{ key, item }` in insertion order, expired ones included. */
  async items(group, what) {
    const entries = await this.call(what, 'entries', group)
    if (!Array.isArray(entries)) throw adapterFailed(what, `entries gave back ${describe(entries)}, not an array`)
    return entries.map((entry) => {
      const key = entry === null || typeof entry !== 'object' ? undefined : entry.key
      if (typeof key !== 'string') throw adapterFailed(what, `entries gave back an entry without a string key`)
      return { key, item: unwrap(entry.value, what, true) }
    })
  }

  async groupNames(what) {
    const names = await this.call(what, 'listGroups')
    if (!Array.isArray(names) || names.some((name) => typeof name !== 'string')) {
      throw adapterFailed(what, `listGroups gave back ${describe(names)}, not an array of strings`)
    }
    return names
  }

  // ---- the calls of StateManager ----

  set(group, key, text, value, ttlMs) {
    checkItem(group, key)
    const what = `set ${itemName(group, key)}`
    this.checkSize(text)
    return this.inLine(group, key, async () => {
      const now = Date.now()
      const ttl = ttlMs > 0 ? ttlMs : this.settings.defaultTtlMs
      const expiresAt = ttl > 0 ? now + ttl : 0
      const previous = unwrap(await this.call(what, 'set', group, key, wrap(JSON.parse(text), expiresAt)), what)
      const old = this.replaced(group, key, previous, now)
      this.expireAt(group, key, expiresAt)
      this.publish(group, key, old, text, undefined)
      return { new_value: value, old_value: old === null ? null : JSON.parse(old) }
    })
  }

  async get(group, key) {
    checkItem(group, key)
    // After the writes of the key (and clears of its group) made before, as in memory.
    const before = this.writesBefore(group, key)
    if (before !== undefined) await before
    const item = await this.read(group, key, `get ${itemName(group, key)}`)
    if (!isLive(item, Date.now())) return null
    return JSON.parse(item.text)
  }

  update(group, key, opsText) {
    checkItem(group, key)
    const what = `update ${itemName(group, key)}`
    return this.inLine(group, key, async () => {
      const now = Date.now()
      const current = await this.read(group, key, what)
      const live = isLive(current, now) ? current : null
      let newText
      try {
        newText = native.applyOps(group, key, live === null ? null : live.text, opsText, this.settings.maxValueBytes)
      } catch (err) {
        throw fromNative(err)
      }
      const defaultTtl = this.settings.defaultTtlMs
      const expiresAt = live !== null ? live.expiresAt : defaultTtl > 0 ? now + defaultTtl : 0
      await this.call(what, 'set', group, key, wrap(JSON.parse(newText), expiresAt))
      const old = this.replaced(group, key, current, now)
      this.expireAt(group, key, expiresAt)
      this.publish(group, key, old, newText, undefined)
      return { new_value: JSON.parse(newText), old_value: old === null ? null : JSON.parse(old) }
    })
  }

  delete(group, key) {
    checkItem(group, key)
    const what = `delete ${itemName(group, key)}`
    return this.inLine(group, key, async () => {
      const previous = unwrap(await this.call(what, 'delete', group, key), what)
      const old = this.replaced(group, key, previous, Date.now())
      this.expireAt(group, key, 0)
      if (old === null) return null
      this.publish(group, key, old, null, undefined)
      return JSON.parse(old)
    })
  }

  clear(group) {
    checkNameLength('group', group)
    const what = `clear ${JSON.stringify(group)}`
    return this.groupInLine(group, async () => {
      const items = await this.items(group, what)
      await this.call(what, 'clear', group)
      const now = Date.now()
      for (const { key, item } of items) {
        this.expireAt(group, key, 0)
        if (item === null) continue
        this.publish(group, key, item.text, null, isLive(item, now) ? 'cleared' : 'expired')
      }
      return undefined
    })
  }

  async getGroup(group) {
    return (await this.liveEntries(group, 'getGroup')).map((entry) => entry.value)
  }

  async entries(group) {
    return this.liveEntries(group, 'entries')
  }

  async keys(group) {
    return (await this.liveEntries(group, 'keys')).map((entry) => entry.key)
  }

  /** The group's live items, read in the group's line: after the writes of the group made
   *  before, and before those made after, as in memory. */
  liveEntries(group, action) {
    checkNameLength('group', group)
    return this.groupInLine(group, async () => {
      const now = Date.now()
      const items = await this.items(group, `${action} ${JSON.stringify(group)}`)
      const out = []
      for (const { key, item } of items) {
        if (isLive(item, now)) out.push({ key, value: JSON.parse(item.text) })
      }
      return out
    })
  }

  /** Sorted names of the groups with a live item: a group whose items are known to have
   *  expired (not yet swept) is looked into. */
  async listGroups() {
    const names = await this.groupNames('listGroups')
    const now = Date.now()
    const doubtful = new Set()
    for (const due of this.expiries.values()) if (due.expiresAt <= now) doubtful.add(due.group)
    const live = []
    for (const name of new Set(names)) {
      if (!doubtful.has(name) || (await this.items(name, 'listGroups')).some(({ item }) => isLive(item, now))) live.push(name)
    }
    return live.sort()
  }

  // ---- writes' bookkeeping ----

  checkSize(text) {
    const limit = this.settings.maxValueBytes
    if (limit > 0 && text.length > limit / 3) {
      const size = Buffer.byteLength(text)
      if (size > limit) {
        throw makeError('VALUE_TOO_LARGE', `value is ${size} bytes of JSON, more than maxValueBytes (${limit})`)
      }
    }
  }

  /**
   * The live value a write replaced, as text (null when there was none). An item the write
   * found expired but not yet swept is gone now: its expiry event comes first.
   */
  replaced(group, key, previous, now) {
    if (previous === null) return null
    if (isLive(previous, now)) return previous.text
    this.publish(group, key, previous.text, null, 'expired')
    return null
  }

  /** Remembers when the item expires (0: never), for the sweep. */
  expireAt(group, key, expiresAt) {
    const id = JSON.stringify([group, key])
    if (expiresAt === 0) {
      this.expiries.delete(id)
      return
    }
    this.expiries.set(id, { group, key, expiresAt })
    if (this.sweeper === null && !this.closed) {
      this.sweeper = setInterval(() => this.sweep(), SWEEP_INTERVAL_MS)
      this.sweeper.unref()
    }
  }

  /** Removes the items whose time has come, each in its key's line, and fires their events. */
  sweep() {
    if (this.sweeping) return
    const now = Date.now()
    const due = []
    for (const entry of this.expiries.values()) if (entry.expiresAt <= now) due.push(entry)
    if (due.length === 0) {
      if (this.expiries.size === 0) this.stopSweeper()
      return
    }
    this.sweeping = true
    const removals = due.map(({ group, key, expiresAt }) =>
      this.inLine(group, key, async () => {
        const id = JSON.stringify([group, key])
        const known = this.expiries.get(id)
        if (known === undefined || known.expiresAt !== expiresAt) return // written meanwhile
        const what = `expire ${itemName(group, key)}`
        const current = await this.read(group, key, what)
        if (current === null || isLive(current, Date.now())) {
          this.expiries.delete(id)
          return
        }
        const removed = unwrap(await this.call(what, 'delete', group, key), what)
        this.expiries.delete(id)
        if (removed !== null) this.publish(group, key, removed.text, null, 'expired')
      }),
    )
    // An adapter that fails leaves the item in place; the next sweep tries again.
    Promise.allSettled(removals).then(() => {
      this.sweeping = false
    })
  }

  stopSweeper() {
    if (this.sweeper !== null) clearInterval(this.sweeper)
    this.sweeper = null
  }

  // ---- change events ----

  /** Queues the event of a committed change (texts of the old and new value, null: none). */
  publish(group, key, oldText, newText, why) {
    if (this.subscriptions.size === 0) return
    const eventType = newText === null ? 'state:deleted' : oldText === null ? 'state:created' : 'state:updated'
    let text =
      `{"type":"state","event_type":"${eventType}","group_id":${JSON.stringify(group)},"item_id":${JSON.stringify(key)},` +
      `"old_value":${oldText === null ? 'null' : oldText},"new_value":${newText === null ? 'null' : newText}`
    text += why === undefined ? '}' : `,"reason":"${why}"}`
    this.sequence += 1
    this.pending.push({ sequence: this.sequence, group, key, text })
    if (!this.flushScheduled) {
      this.flushScheduled = true
      // A later turn: the write's own promise has resolved by then (it resolves in microtasks).
      setImmediate(() => this.flush())
    }
  }

  flush() {
    this.flushScheduled = false
    const batch = this.pending
    this.pending = []
    for (const subscription of this.subscriptions) {
      const texts = []
      for (const event of batch) {
        if (event.sequence <= subscription.after) continue
        if (subscription.group !== null && subscription.group !== event.group) continue
        if (subscription.key !== null && subscription.key !== event.key) continue
        texts.push(event.text)
      }
      // Each subscription gets events of its own, so no listener sees another's changes.
      if (texts.length > 0 && subscription.active) subscription.deliver(JSON.parse(`[${texts.join(',')}]`))
    }
  }

  /** As native.js: `deliver(events)` gets each batch of changes committed after this call. */
  subscribe(group, key, deliver) {
    const subscription = { group, key, deliver, after: this.sequence, active: true }
    this.subscriptions.add(subscription)
    return subscription
  }

  unsubscribe(subscription) {
    subscription.active = false
    this.subscriptions.delete(subscription)
  }

  /** Waits for the writes in line, stops the sweep, and closes the adapter if it has `close`. */
  async close() {
    this.closed = true
    this.stopSweeper()
    await this.settled()
    this.stopSweeper()
    this.expiries.clear()
    if (typeof this.adapter.close === 'function') await this.call('close', 'close')
  }
}

module.exports = { AdapterBackend, ENVELOPE }
