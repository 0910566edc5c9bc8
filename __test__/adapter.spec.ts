// A user's own store (SPEC "Custom adapters"): what only a StateAdapter can show. Everything a
// store must do (methods, ops, events, TTL, concurrency) is the conformance pass's to check, on
// a Map-backed adapter (STEPSTATE_TEST_ADAPTER=adapter); here: the adapter's failures (code
// BACKEND_UNAVAILABLE with the adapter's error as `cause`, nothing half-applied reported as
// done), the TTL envelope that survives a restart, values the adapter held before, copies in
// both directions, and adapters that are not adapters.
import { afterEach, describe, expect, it } from 'vitest'
import { StateManager, type StateChangeEvent } from '../index.js'
import { expectRejection } from './helpers/assertions'
import { closeManagers, track } from './helpers/managers'
import { MapAdapter } from './helpers/map-adapter'
import { waitFor } from './helpers/wait-for'

afterEach(closeManagers)

/** A MapAdapter whose methods named in `failing` throw (or reject) until told otherwise. */
class FailingAdapter extends MapAdapter {
  failing = new Set<string>()
  readonly failure = new Error('the disk is on fire')
  private check(method: string) {
    if (this.failing.has(method)) throw this.failure
  }
  override async get(group: string, key: string) {
    this.check('get')
    return super.get(group, key)
  }
  override async set(group: string, key: string, value: any) {
    this.check('set')
    return super.set(group, key, value)
  }
  override async delete(group: string, key: string) {
    this.check('delete')
    return super.delete(group, key)
  }
  override async entries(group: string) {
    this.check('entries')
    return super.entries(group)
  }
  override async clear(group: string) {
    this.check('clear')
    return super.clear(group)
  }
  override async listGroups() {
    this.check('listGroups')
    return super.listGroups()
  }
}

describe('an adapter that fails', () => {
  it.each([
    ['set', (s: StateManager) => s.set('g', 'k', 2)],
    ['get', (s: StateManager) => s.get('g', 'k')],
    ['update', (s: StateManager) => s.update('g', 'k', [{ type: 'increment', path: 'n', by: 1 }])],
    ['delete', (s: StateManager) => s.delete('g', 'k')],
    ['clear', (s: StateManager) => s.clear('g')],
    ['getGroup', (s: StateManager) => s.getGroup('g')],
    ['listGroups', (s: StateManager) => s.listGroups()],
  ])('makes %s reject with BACKEND_UNAVAILABLE, the adapter error as cause, and no event', async (_name, call) => {
    const adapter = new FailingAdapter()
    const state = track(new StateManager({ adapter }))
    await state.set('g', 'k', { n: 1 })
    const events: StateChangeEvent[] = []
    state.onChange((event) => {
      events.push(event)
    })
    for (const method of ['get', 'set', 'delete', 'entries', 'clear', 'listGroups']) adapter.failing.add(method)
    const err = await expectRejection(() => call(state), 'BACKEND_UNAVAILABLE')
    expect(err.cause).toBe(adapter.failure)
    expect(err.message).toContain('the disk is on fire')
    adapter.failing.clear()
    await new Promise((resolve) => setTimeout(resolve, 20))
    expect(events).toEqual([])
    expect(await state.get('g', 'k')).toEqual({ n: 1 })
  })

  it('accepts a synchronous throw as well as a rejection, and keeps working afterwards', async () => {
    const adapter = new MapAdapter()
    const state = track(new StateManager({ adapter }))
    const original = adapter.set.bind(adapter)
    const cause = new TypeError('sync boom')
    adapter.set = () => {
      throw cause
    }
    const err = await expectRejection(() => state.set('g', 'k', 1), 'BACKEND_UNAVAILABLE')
    expect(err.cause).toBe(cause)
    adapter.set = original
    expect(await state.set('g', 'k', 1)).toEqual({ new_value: 1, old_value: null })
  })

  it('leaves an update whose write failed unreported, and the next update in line sees the old value', async () => {
    const adapter = new FailingAdapter()
    const state = track(new StateManager({ adapter }))
    await state.set('g', 'k', { n: 1 })
    adapter.failing.add('set')
    const failed = state.update('g', 'k', [{ type: 'increment', path: 'n', by: 1 }])
    const next = failed.catch(() => {
      adapter.failing.clear()
      return state.update('g', 'k', [{ type: 'increment', path: 'n', by: 10 }])
    })
    await expectRejection(() => failed, 'BACKEND_UNAVAILABLE')
    expect(await next).toEqual({ new_value: { n: 11 }, old_value: { n: 1 } })
  })

  it('rejects open with BACKEND_UNAVAILABLE when the adapter cannot list what it holds', async () => {
    const adapter = new FailingAdapter()
    adapter.failing.add('listGroups')
    const err = await expectRejection(() => StateManager.open({ adapter }), 'BACKEND_UNAVAILABLE')
    expect(err.cause).toBe(adapter.failure)
  })

  it('names a reply that breaks the contract', async () => {
    const adapter = new MapAdapter()
    adapter.entries = async () => 'not a list' as any
    const state = track(new StateManager({ adapter }))
    const err = await expectRejection(() => state.getGroup('g'), 'BACKEND_UNAVAILABLE')
    expect(err.message).toContain('not an array')
  })
})

describe('what the adapter stores', () => {
  it('is the value itself, or an envelope with the expiry that a new manager honours', async () => {
    const adapter = new MapAdapter()
    const first = track(new StateManager({ adapter }))
    await first.set('g', 'plain', { a: 1 })
    await first.set('g', 'short', 'soon gone', { ttl: 0.2 })
    await first.set('g', 'nothing', null)
    expect(adapter.groups.get('g')?.get('plain')).toEqual({ a: 1 })
    const envelope = adapter.groups.get('g')?.get('short') as any
    expect(Object.keys(envelope).sort()).toEqual(['$stepstate', 'value'])
    expect(envelope.value).toBe('soon gone')
    expect(envelope.$stepstate.expiresAt).toBeGreaterThan(Date.now())
    await first.close()

    // A restart: a new manager over what the adapter holds sweeps the item on time.
    const second = track(await StateManager.open({ adapter }))
    const expired: StateChangeEvent[] = []
    second.onChange((event) => {
      if (event.reason === 'expired') expired.push(event)
    })
    expect(await second.get('g', 'short')).toBe('soon gone')
    expect(await second.get('g', 'nothing')).toBeNull()
    expect(await second.entries('g')).toEqual([
      { key: 'plain', value: { a: 1 } },
      { key: 'short', value: 'soon gone' },
      { key: 'nothing', value: null },
    ])
    await waitFor(() => expired.length === 1, 3000, 'the expiry event after the restart')
    expect(expired[0]).toMatchObject({ item_id: 'short', old_value: 'soon gone', new_value: null })
    expect(adapter.groups.get('g')?.has('short')).toBe(false)
  })

  it('reads back values that were in the adapter before, and values that look like envelopes', async () => {
    const adapter = new MapAdapter()
    await adapter.set('legacy', 'a', { total: 3 })
    await adapter.set('legacy', 'b', [1, 2])
    const state = track(await StateManager.open({ adapter }))
    expect(await state.getGroup('legacy')).toEqual([{ total: 3 }, [1, 2]])
    const tricky = { $stepstate: { expiresAt: 1 }, value: 'mine' }
    await state.set('g', 'k', tricky)
    expect(await state.get('g', 'k')).toEqual(tricky)
    expect(await state.update('g', 'k', [{ type: 'set', path: 'value', value: 'still mine' }])).toMatchObject({
      new_value: { $stepstate: { expiresAt: 1 }, value: 'still mine' },
    })
  })

  it('is a copy, and what it gives back is copied before the caller sees it', async () => {
    const adapter = new MapAdapter()
    const state = track(new StateManager({ adapter }))
    const value = { nested: { n: 1 } }
    await state.set('g', 'k', value)
    value.nested.n = 2
    const read = (await state.get('g', 'k')) as any
    expect(read).toEqual({ nested: { n: 1 } })
    read.nested.n = 3
    expect(adapter.groups.get('g')?.get('k')).toEqual({ nested: { n: 1 } })
  })
})

describe('an adapter option that is not an adapter', () => {
  it('throws INVALID_ARGUMENT naming the missing methods', () => {
    let thrown: any
    try {
      new StateManager({ adapter: { get() {}, set() {} } as any })
    } catch (err) {
      thrown = err
    }
    expect(thrown).toBeInstanceOf(TypeError)
    expect(thrown.code).toBe('INVALID_ARGUMENT')
    expect(thrown.message).toContain('delete, entries, clear, listGroups')
  })

  it('rejects null and unknown names as before', async () => {
    expect(() => new StateManager({ adapter: null as any })).toThrow(/adapter null is not available/)
    expect(() => new StateManager({ adapter: 'sqlite' as any })).toThrow(/adapter "sqlite" is not available/)
  })
})

describe('close', () => {
  it('waits for the writes in line, then calls the adapter close once', async () => {
    let closes = 0
    const adapter = Object.assign(new MapAdapter(), {
      close: async () => {
        closes += 1
      },
    })
    const state = await StateManager.open({ adapter })
    const writes = Array.from({ length: 50 }, () => state.update('g', 'k', [{ type: 'increment', path: 'n', by: 1 }]))
    await state.close()
    await state.close()
    await Promise.all(writes)
    expect(closes).toBe(1)
    expect(adapter.groups.get('g')?.get('k')).toEqual({ n: 50 })
    await expectRejection(() => state.get('g', 'k'), 'CLOSED')
  })
})
