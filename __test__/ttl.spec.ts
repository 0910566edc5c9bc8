// TTL (SPEC "Methods", "UpdateOp", "Opening a store", "Change events"): `set(..., { ttl })` in
// seconds, the store-wide default `ttl`, expired items vanishing from every read, the expiry
// event that fires whether or not anyone reads the key, `update` keeping an item's expiry, and
// the rejection of invalid TTLs. Expiry is observed by polling (`waitFor`), never by sleeping a
// fixed time and hoping.
import { afterEach, describe, expect, it } from 'vitest'
import { StateManager, type StateChangeEvent } from '../index.js'
import { expectRejection, expectRejectionLeavesStoreUnchanged } from './helpers/assertions'
import { closeManagers, freshManager, track } from './helpers/managers'
import { waitFor } from './helpers/wait-for'

afterEach(closeManagers)

/** Generous bound for "gone after its TTL": the TTL plus about a second of sweep and load. */
const EXPIRY_DEADLINE_MS = 3000

async function waitUntilGone(state: StateManager, group: string, key: string) {
  return waitFor(async () => (await state.get(group, key)) === null, EXPIRY_DEADLINE_MS, `${group}/${key} to expire`)
}

describe('set with a ttl', () => {
  it('keeps the item readable at first and removes it once the ttl in seconds has passed', async () => {
    const state = freshManager()
    const started = Date.now()
    await state.set('sessions', 's1', { user: 'u1' }, { ttl: 0.15 })
    expect(await state.get('sessions', 's1')).toEqual({ user: 'u1' })
    await waitUntilGone(state, 'sessions', 's1')
    // The TTL counts from the write, in seconds: not milliseconds, and never early.
    expect(Date.now() - started).toBeGreaterThanOrEqual(149)
  })

  it('hides expired items from get, getGroup, list, entries, keys and listGroups', async () => {
    const state = freshManager()
    await state.set('g', 'short', 'a', { ttl: 0.15 })
    await state.set('g', 'long', 'b')
    await state.set('g', 'short2', 'c', { ttl: 0.15 })
    await state.set('h', 'only', 'd', { ttl: 0.15 })
    expect(await state.listGroups()).toEqual(['g', 'h'])
    expect(await state.keys('g')).toEqual(['short', 'long', 'short2'])

    await waitFor(
      async () => (await state.get('g', 'short')) === null && (await state.get('g', 'short2')) === null,
      EXPIRY_DEADLINE_MS,
      'both short items to expire',
    )
    expect(await state.getGroup('g')).toEqual(['b'])
    expect(await state.list('g')).toEqual(['b'])
    expect(await state.entries('g')).toEqual([{ key: 'long', value: 'b' }])
    expect(await state.keys('g')).toEqual(['long'])
    await waitUntilGone(state, 'h', 'only')
    expect(await state.getGroup('h')).toEqual([])
    expect(await state.entries('h')).toEqual([])
    expect(await state.keys('h')).toEqual([])
    expect(await state.listGroups(), 'a group whose items all expired vanishes').toEqual(['g'])
    expect(await state.get('g', 'long')).toBe('b')
  })

  it('treats an expired key as absent for the next set and delete', async () => {
    const state = freshManager()
    await state.set('g', 'k', 'old', { ttl: 0.1 })
    await state.set('g', 'other', 'old', { ttl: 0.1 })
    await waitUntilGone(state, 'g', 'k')
    await waitUntilGone(state, 'g', 'other')
    expect(await state.set('g', 'k', 'new')).toEqual({ new_value: 'new', old_value: null })
    expect(await state.delete('g', 'other')).toBeNull()
    expect(await state.get('g', 'k')).toBe('new')
  })

  it('lets a later set without ttl make the item permanent', async () => {
    const state = freshManager()
    await state.set('g', 'k', 1, { ttl: 0.1 })
    await state.set('g', 'k', 2)
    await state.set('g', 'marker', 0, { ttl: 0.2 })
    await waitUntilGone(state, 'g', 'marker')
    expect(await state.get('g', 'k')).toBe(2)
  })

  it('lets a later set with a longer ttl keep the item past the first expiry time', async () => {
    const state = freshManager()
    await state.set('g', 'k', 1, { ttl: 0.1 })
    await state.set('g', 'k', 2, { ttl: 60 })
    await state.set('g', 'marker', 0, { ttl: 0.3 })
    await waitUntilGone(state, 'g', 'marker')
    expect(await state.get('g', 'k')).toBe(2)
  })
})

describe('the expiry event', () => {
  it('fires state:deleted with reason expired within about a second even if nobody reads the key', async () => {
    const state = freshManager()
    const events: StateChangeEvent[] = []
    state.onChange((event: StateChangeEvent) => {
      events.push(event)
    }, { group: 'sessions' })
    const started = Date.now()
    await state.set('sessions', 's1', { user: 'u1' }, { ttl: 0.2 })
    await waitFor(() => events.length === 2, 200 + 1500, 'the expiry event')
    const elapsed = Date.now() - started
    expect(events[1]).toStrictEqual({
      type: 'state',
      event_type: 'state:deleted',
      group_id: 'sessions',
      item_id: 's1',
      old_value: { user: 'u1' },
      new_value: null,
      reason: 'expired',
    })
    expect(elapsed).toBeGreaterThanOrEqual(199)
  })

  it('fires once per expired item, and not for items that were deleted or overwritten without ttl first', async () => {
    const state = freshManager()
    const events: StateChangeEvent[] = []
    state.onChange((event: StateChangeEvent) => {
      if (event.reason === 'expired') events.push(event)
    })
    await state.set('g', 'expires', 1, { ttl: 0.1 })
    await state.set('g', 'deleted', 2, { ttl: 0.1 })
    await state.set('g', 'kept', 3, { ttl: 0.1 })
    await state.delete('g', 'deleted')
    await state.set('g', 'kept', 4)
    await state.set('g', 'last', 5, { ttl: 0.3 })
    await waitFor(() => events.some((e) => e.item_id === 'last'), EXPIRY_DEADLINE_MS, 'the last expiry event')
    expect(events.map((e) => [e.item_id, e.old_value])).toEqual([
      ['expires', 1],
      ['last', 5],
    ])
    expect(await state.get('g', 'kept')).toBe(4)
  })
})

describe('update and expiry', () => {
  it('keeps the expiry of the item it updates', async () => {
    const state = freshManager()
    const expired: StateChangeEvent[] = []
    state.onChange((event: StateChangeEvent) => {
      if (event.reason === 'expired') expired.push(event)
    })
    const started = Date.now()
    await state.set('counters', 'c', { n: 0 }, { ttl: 0.3 })
    expect(await state.update('counters', 'c', [{ type: 'increment', path: 'n', by: 1 }])).toEqual({
      new_value: { n: 1 },
      old_value: { n: 0 },
    })
    expect(await state.get('counters', 'c')).toEqual({ n: 1 })
    await waitUntilGone(state, 'counters', 'c')
    expect(Date.now() - started).toBeGreaterThanOrEqual(299)
    await waitFor(() => expired.length === 1, EXPIRY_DEADLINE_MS, 'the expiry event')
    expect(expired[0].old_value).toEqual({ n: 1 })
  })

  it('starts from an empty object when the item has expired', async () => {
    const state = freshManager()
    await state.set('counters', 'c', { n: 41, extra: true }, { ttl: 0.1 })
    await waitUntilGone(state, 'counters', 'c')
    expect(await state.update('counters', 'c', [{ type: 'increment', path: 'n', by: 1 }])).toEqual({
      new_value: { n: 1 },
      old_value: null,
    })
  })
})

describe('the default ttl option', () => {
  it('applies to set without ttl, and an explicit ttl overrides it', async () => {
    const state = track(await StateManager.open({ ttl: 0.15 }))
    await state.set('g', 'default', 1)
    await state.set('g', 'explicit', 2, { ttl: 60 })
    await state.set('g', 'shorter', 3, { ttl: 0.05 })
    expect(await state.keys('g')).toEqual(['default', 'explicit', 'shorter'])
    await waitUntilGone(state, 'g', 'default')
    expect(await state.get('g', 'shorter')).toBeNull()
    expect(await state.get('g', 'explicit')).toBe(2)
    expect(await state.keys('g')).toEqual(['explicit'])
  })

  it('also works through the constructor', async () => {
    const state = freshManager({ ttl: 0.1 })
    await state.set('g', 'k', 'v')
    expect(await state.get('g', 'k')).toBe('v')
    await waitUntilGone(state, 'g', 'k')
  })

  it('is absent by default, so items without ttl stay', async () => {
    const state = freshManager()
    await state.set('g', 'forever', 1)
    await state.set('g', 'brief', 2, { ttl: 0.1 })
    await waitUntilGone(state, 'g', 'brief')
    expect(await state.get('g', 'forever')).toBe(1)
  })
})

describe('invalid ttl values', () => {
  const invalid: unknown[] = [0, -1, NaN, Infinity, -Infinity, '5', null, true, {}, [1]]
  const label = (value: unknown) => (typeof value === 'number' ? String(value) : JSON.stringify(value))

  it.each(invalid.map((ttl) => [label(ttl), ttl]))(
    'rejects set with ttl %s with INVALID_ARGUMENT and changes nothing',
    async (_name, ttl) => {
      const state = freshManager()
      await state.set('g', 'existing', { keep: true })
      const events: StateChangeEvent[] = []
      state.onChange((event: StateChangeEvent) => {
        events.push(event)
      })
      const probes: Array<[unknown, unknown]> = [
        ['g', 'existing'],
        ['g', 'new'],
      ]
      await expectRejectionLeavesStoreUnchanged(
        state,
        () => state.set('g', 'existing', { keep: false }, { ttl } as never),
        'INVALID_ARGUMENT',
        probes,
      )
      const err = await expectRejectionLeavesStoreUnchanged(
        state,
        () => state.set('g', 'new', 1, { ttl } as never),
        'INVALID_ARGUMENT',
        probes,
      )
      expect(err).toBeInstanceOf(TypeError)
      // Delivery has caught up once the marker's event arrives; nothing came before it.
      await state.set('g', 'marker', 0)
      await waitFor(() => events.length > 0, 5000, 'the marker event')
      expect(events.map((e) => e.item_id)).toEqual(['marker'])
    },
  )

  it.each(invalid.map((ttl) => [label(ttl), ttl]))(
    'rejects the store option ttl %s with INVALID_ARGUMENT',
    async (_name, ttl) => {
      const err = await expectRejection(() => StateManager.open({ ttl } as never), 'INVALID_ARGUMENT')
      expect(err).toBeInstanceOf(TypeError)
      expect(() => track(new StateManager({ ttl } as never))).toThrow(TypeError)
    },
  )
})
