'use strict'
// The durable reference stores of the file-store benchmark, with stepstate's result shapes:
// `set`/`update` -> { new_value, old_value } and `get` -> value or null.
//
// - SqliteStore: better-sqlite3 in WAL mode with synchronous=NORMAL (its recommended durable
//   setting: survives a process crash, may lose the last transactions on power loss, like
//   stepstate's 'everysec'). `update` is a read-modify-write transaction.
// - LmdbStore: lmdb-js with its default durability (each commit is synced), awaiting every
//   `put` (lmdb batches the puts of one event-loop turn into one commit).

const Database = require('better-sqlite3')
const { open } = require('lmdb')
const { applyOps } = require('./reference-stores')

class SqliteStore {
  constructor(dir) {
    this.db = new Database(`${dir}/bench.sqlite`)
    this.db.pragma('journal_mode = WAL')
    this.db.pragma('synchronous = NORMAL')
    this.db.exec('CREATE TABLE IF NOT EXISTS state (grp TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL, PRIMARY KEY (grp, key))')
    this.select = this.db.prepare('SELECT value FROM state WHERE grp = ? AND key = ?')
    this.upsert = this.db.prepare(
      'INSERT INTO state (grp, key, value) VALUES (?, ?, ?) ON CONFLICT (grp, key) DO UPDATE SET value = excluded.value',
    )
    this.setTx = this.db.transaction((group, key, text) => {
      const old = this.select.get(group, key)
      this.upsert.run(group, key, text)
      return old === undefined ? null : old.value
    })
    this.updateTx = this.db.transaction((group, key, ops) => {
      const old = this.select.get(group, key)
      const oldValue = old === undefined ? null : JSON.parse(old.value)
      const text = JSON.stringify(applyOps(old === undefined ? {} : JSON.parse(old.value), ops))
      this.upsert.run(group, key, text)
      return [text, oldValue]
    })
  }
  async set(group, key, value) {
    const text = JSON.stringify(value)
    const old = this.setTx(group, key, text)
    return { new_value: JSON.parse(text), old_value: old === null ? null : JSON.parse(old) }
  }
  async get(group, key) {
    const row = this.select.get(group, key)
    return row === undefined ? null : JSON.parse(row.value)
  }
  async update(group, key, ops) {
    const [text, oldValue] = this.updateTx(group, key, ops)
    return { new_value: JSON.parse(text), old_value: oldValue }
  }
  async close() {
    this.db.close()
  }
}

class LmdbStore {
  constructor(dir) {
    this.db = open({ path: `${dir}/bench.lmdb` })
  }
  async set(group, key, value) {
    const old = this.db.get([group, key])
    await this.db.put([group, key], value)
    return { new_value: value, old_value: old === undefined ? null : old }
  }
  async get(group, key) {
    const value = this.db.get([group, key])
    return value === undefined ? null : value
  }
  async update(group, key, ops) {
    let result
    await this.db.transaction(() => {
      const old = this.db.get([group, key])
      const next = applyOps(old === undefined ? {} : structuredClone(old), ops)
      this.db.put([group, key], next)
      result = { new_value: next, old_value: old === undefined ? null : old }
    })
    return result
  }
  async close() {
    await this.db.close()
  }
}

module.exports = { SqliteStore, LmdbStore }
