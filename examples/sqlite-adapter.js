// A StateAdapter over SQLite (better-sqlite3, WAL journal): a store of your own for stepstate.
//
// The adapter only stores: StateManager does the checks, the atomic updates, the change events
// and the TTL on top of it (README, "Your own store"). Values are kept as JSON text, one row per
// item; the rowid keeps insertion order (an upsert keeps a row's rowid, a delete then insert gets
// a new, larger one), which is what `entries` must give back. An item with a TTL arrives as an
// envelope (`{ "$stepstate": { "expiresAt": ms }, "value": ... }`) and is stored as it is, so the
// expiry survives a restart.
//
//   const { SqliteAdapter } = require('./sqlite-adapter.js')
//   const state = await StateManager.open({ adapter: new SqliteAdapter('state.db') })

'use strict'

const Database = require('better-sqlite3')

class SqliteAdapter {
  /** Opens (or creates) the database file `filename`; `':memory:'` for a throwaway one. */
  constructor(filename) {
    this.db = new Database(filename)
    this.db.pragma('journal_mode = WAL')
    this.db.pragma('synchronous = NORMAL') // WAL + NORMAL: a committed write survives a process crash
    this.db.exec(`CREATE TABLE IF NOT EXISTS stepstate_items (
      grp TEXT NOT NULL,
      key TEXT NOT NULL,
      value TEXT NOT NULL,
      UNIQUE (grp, key)
    )`)
    const sql = {
      get: this.db.prepare('SELECT value FROM stepstate_items WHERE grp = ? AND key = ?').pluck(),
      upsert: this.db.prepare(
        'INSERT INTO stepstate_items (grp, key, value) VALUES (?, ?, ?) ON CONFLICT (grp, key) DO UPDATE SET value = excluded.value',
      ),
      delete: this.db.prepare('DELETE FROM stepstate_items WHERE grp = ? AND key = ?'),
      entries: this.db.prepare('SELECT key, value FROM stepstate_items WHERE grp = ? ORDER BY rowid'),
      clear: this.db.prepare('DELETE FROM stepstate_items WHERE grp = ?'),
      groups: this.db.prepare('SELECT DISTINCT grp FROM stepstate_items').pluck(),
    }
    this.sql = sql
    // Read the old value and write the new one in one transaction.
    this.swap = this.db.transaction((group, key, text) => {
      const old = sql.get.get(group, key)
      if (text === null) sql.delete.run(group, key)
      else sql.upsert.run(group, key, text)
      return old === undefined ? null : JSON.parse(old)
    })
  }

  async get(group, key) {
    const text = this.sql.get.get(group, key)
    return text === undefined ? null : JSON.parse(text)
  }

  async set(group, key, value) {
    return this.swap(group, key, JSON.stringify(value))
  }

  async delete(group, key) {
    return this.swap(group, key, null)
  }

  async entries(group) {
    return this.sql.entries.all(group).map((row) => ({ key: row.key, value: JSON.parse(row.value) }))
  }

  async clear(group) {
    this.sql.clear.run(group)
  }

  async listGroups() {
    return this.sql.groups.all()
  }

  async close() {
    this.db.close()
  }
}

module.exports = { SqliteAdapter }
