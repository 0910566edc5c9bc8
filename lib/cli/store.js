'use strict'
// How `npx stepstate` reaches a store. Reading commands get a `Reader` and never change a
// file store: they read its files as recovery would (the native `fileRead`, no lock), also
// while another process holds it. Writing commands and Redis go through the public
// `StateManager`, which takes a file store's lock (another holder: `LOCKED`, with its pid).

const fs = require('node:fs')
const path = require('node:path')
const native = require('../../binding.js')
const { StateManager } = require('../../index.js')
const { fromNative } = require('../errors.js')
const { EXIT, CliError } = require('./exit.js')

/** Where the command line points: `{ kind: 'file', path }` or `{ kind: 'redis', url, prefix }`. */
function target(options) {
  if (options.url !== undefined && options.path !== undefined) {
    throw new CliError(EXIT.USAGE, 'give either --path (a file store) or --url (a Redis store), not both')
  }
  if (options.prefix !== undefined && options.url === undefined) {
    throw new CliError(EXIT.USAGE, '--prefix applies to a Redis store (--url)')
  }
  if (options.url !== undefined) {
    const commandTimeout = options.timeout === undefined ? 5000 : Number(options.timeout)
    if (!Number.isFinite(commandTimeout) || commandTimeout <= 0) {
      throw new CliError(EXIT.USAGE, `--timeout must be a positive number of milliseconds, got ${JSON.stringify(options.timeout)}`)
    }
    return { kind: 'redis', url: options.url, prefix: options.prefix, commandTimeout }
  }
  return { kind: 'file', path: path.resolve(options.path === undefined ? '.stepstate' : options.path) }
}

/** The URL without its password, for messages. */
function shownUrl(url) {
  try {
    const parsed = new URL(url)
    if (parsed.password) parsed.password = '***'
    return parsed.toString()
  } catch {
    return url
  }
}

/** A name for the store in messages. */
function describeTarget(where) {
  if (where.kind === 'file') return where.path
  return `${shownUrl(where.url)}${where.prefix === undefined ? '' : ` (prefix ${JSON.stringify(where.prefix)})`}`
}

/** Refuses a file store directory that does not exist (NOT_FOUND). */
function requireStoreDir(where) {
  let stat
  try {
    stat = fs.statSync(where.path)
  } catch (err) {
    if (err.code === 'ENOENT') throw new CliError(EXIT.NOT_FOUND, `no store at ${where.path}`)
    throw err
  }
  if (!stat.isDirectory()) throw new CliError(EXIT.USAGE, `${where.path} is not a directory`)
}

/** The pid holding the file store (0: pid unknown), or null. */
function holderOf(where) {
  try {
    return native.fileHolder(where.path)
  } catch (err) {
    throw fromNative(err)
  }
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Reads a file store's files as recovery would, without the lock. The holder may be writing
 * meanwhile: a log it grows or a compaction that retires files between our reads can look
 * like damage, so a held store is read again a few times before damage is believed.
 */
async function readFileStore(where, holder) {
  for (let attempt = 0; ; attempt += 1) {
    try {
      return native.fileRead(where.path)
    } catch (raw) {
      const err = fromNative(raw)
      const retry = holder !== null && (err.code === 'CORRUPT' || err.code === 'IO') && attempt < 4
      if (!retry) throw err
      await sleep(50 * (attempt + 1))
    }
  }
}

/**
 * A store to read: `groups()`, `entries(group)` (`{ key, value }[]`), `get(group, key)`
 * (`{ found, value }`), `close()`, and for a file store `held` (pid or null) and `readAt`.
 */
async function openReader(where) {
  if (where.kind === 'file') {
    requireStoreDir(where)
    const held = holderOf(where)
    const store = await readFileStore(where, held)
    const wrap = (fn) => {
      try {
        return fn()
      } catch (err) {
        throw fromNative(err)
      }
    }
    return {
      kind: 'file',
      held,
      readAt: new Date(),
      groups: async () => wrap(() => native.readGroups(store)),
      entries: async (group) => JSON.parse(wrap(() => native.readEntries(store, group))),
      get: async (group, key) => {
        const text = wrap(() => native.readGet(store, group, key))
        return text === null ? { found: false } : { found: true, value: JSON.parse(text) }
      },
      close: async () => {},
    }
  }
  const manager = await openManager(where)
  return {
    kind: 'redis',
    held: null,
    groups: () => manager.listGroups(),
    entries: (group) => manager.entries(group),
    get: async (group, key) => {
      const value = await manager.get(group, key)
      // `null` is also a value one can store: ask whether the key is there.
      if (value === null && !(await manager.keys(group)).includes(key)) return { found: false }
      return { found: true, value }
    },
    close: () => manager.close(),
  }
}

/** A `StateManager` on the store, for writing (a file store's lock is taken). */
async function openManager(where) {
  if (where.kind === 'file') {
    try {
      return await StateManager.open({ adapter: 'file', path: where.path })
    } catch (err) {
      if (err.code === 'LOCKED') {
        err.message += '; commands that write need the store to themselves (reading commands work while it is held)'
      }
      throw err
    }
  }
  const options = { adapter: 'redis', url: where.url, commandTimeout: where.commandTimeout }
  if (where.prefix !== undefined) options.prefix = where.prefix
  return StateManager.open(options)
}

module.exports = { target, describeTarget, requireStoreDir, holderOf, openReader, openManager }
