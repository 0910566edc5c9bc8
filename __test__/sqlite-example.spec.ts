// The SQLite adapter of examples/ (a user's own store over better-sqlite3, WAL): the runnable
// example works, keeps its orders and its TTL'd session across runs, and the adapter passes the
// same checks as the built-in stores on the points a real database makes interesting
// (insertion order after delete and re-set, null values, envelopes, failures as causes).
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { StateManager } from '../index.js'
import { closeManagers, tempDirectory, track } from './helpers/managers'
import { waitFor } from './helpers/wait-for'

// eslint-disable-next-line @typescript-eslint/no-require-imports
const { SqliteAdapter } = require('../examples/sqlite-adapter.js')

afterEach(closeManagers)

const example = join(__dirname, '..', 'examples', 'sqlite-order-flow.js')

describe('examples/sqlite-order-flow.js', () => {
  it('reports the orders of both runs on the second run, and finds the first run’s session', () => {
    const db = join(tempDirectory(), 'state.db')
    const first = execFileSync(process.execPath, [example, db], { encoding: 'utf8' })
    expect(first).toContain('-- no session from an earlier run')
    expect(first).toContain('report: 2 pending, 3 paid')
    expect(first).toContain('event: state:created orders/order-1')
    const second = execFileSync(process.execPath, [example, db], { encoding: 'utf8' })
    expect(second).toContain('-- a session from an earlier run')
    expect(second).toContain('report: 4 pending, 6 paid')
  })
})

describe('the SQLite adapter', () => {
  it('keeps insertion order, null values and expiry across a reopen', async () => {
    const db = join(tempDirectory(), 'state.db')
    const state = track(await StateManager.open({ adapter: new SqliteAdapter(db) }))
    await state.set('g', 'a', 1)
    await state.set('g', 'b', null)
    await state.set('g', 'c', 3)
    await state.set('g', 'a', 10) // keeps its place
    await state.delete('g', 'b')
    await state.set('g', 'b', 'back') // moves to the end
    await state.set('g', 'short', 'soon gone', { ttl: 0.3 })
    await state.set('g', 'nothing', null)
    expect(await state.update('g', 'counter', [{ type: 'increment', path: 'n', by: 2 }])).toEqual({
      new_value: { n: 2 },
      old_value: null,
    })
    await state.close()

    const reopened = track(await StateManager.open({ adapter: new SqliteAdapter(db) }))
    const expired: unknown[] = []
    reopened.onChange((event) => {
      if (event.reason === 'expired') expired.push(event.item_id)
    })
    expect(await reopened.keys('g')).toEqual(['a', 'c', 'b', 'short', 'nothing', 'counter'])
    expect(await reopened.get('g', 'nothing')).toBeNull()
    expect(await reopened.getGroup('g')).toEqual([10, 3, 'back', 'soon gone', null, { n: 2 }])
    await waitFor(() => expired.length === 1, 3000, 'the expiry event after the reopen')
    expect(await reopened.keys('g')).toEqual(['a', 'c', 'b', 'nothing', 'counter'])
    expect(await reopened.listGroups()).toEqual(['g'])
  })

  it('gives 1,000 concurrent increments of one key exactly 1,000', async () => {
    const state = track(await StateManager.open({ adapter: new SqliteAdapter(':memory:') }))
    await Promise.all(Array.from({ length: 1000 }, () => state.update('g', 'k', [{ type: 'increment', path: 'n', by: 1 }])))
    expect(await state.get('g', 'k')).toEqual({ n: 1000 })
  })

  it('turns a database error into BACKEND_UNAVAILABLE with the SQLite error as cause', async () => {
    const adapter = new SqliteAdapter(':memory:')
    const state = track(await StateManager.open({ adapter }))
    adapter.db.close()
    const err = await state.set('g', 'k', 1).catch((e) => e)
    expect(err.code).toBe('BACKEND_UNAVAILABLE')
    expect(err.cause).toBeInstanceOf(TypeError) // better-sqlite3: "The database connection is not open"
  })
})
