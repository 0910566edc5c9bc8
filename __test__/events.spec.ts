// Change events (SPEC "Change events"): the exact event objects, filters, unsubscribing, when
// listeners run relative to the write, per-key commit order, what a failing listener does, the
// writes that fire nothing, the `watch` async iterator, and that a listener never keeps the
// process alive.
import { spawnSync } from 'node:child_process'
import { dirname, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { afterEach, describe, expect, it } from 'vitest'
import type { StateChangeEvent, StateManager } from '../index.js'
import { expectRejection } from './helpers/assertions'
import { closeManagers, freshManager } from './helpers/managers'
import { waitFor } from './helpers/wait-for'

const repositoryRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..')

afterEach(closeManagers)

/** Subscribes a listener that records every event it receives. */
function record(state: StateManager, filter?: Parameters<StateManager['onChange']>[1]) {
  const events: StateChangeEvent[] = []
  const off = state.onChange((event: StateChangeEvent) => {
    events.push(event)
  }, filter)
  return { events, off }
}

/**
 * Proves that event delivery has caught up with every write made so far: writes a marker item
 * and waits until `events` (recorded by a listener that sees the marker's group) contains its
 * creation. Events are delivered in order, so anything an earlier write fired is in by then.
 */
async function catchUp(state: StateManager, events: StateChangeEvent[], group = 'g') {
  const marker = `marker-${Math.random().toString(36).slice(2)}`
  await state.set(group, marker, 'marker')
  await waitFor(() => events.some((e) => e.item_id === marker), 5000, `the event of ${group}/${marker}`)
  return events.filter((e) => e.item_id !== marker)
}

const created = (group: string, key: string, value: unknown) => ({
  type: 'state',
  event_type: 'state:created',
  group_id: group,
  item_id: key,
  old_value: null,
  new_value: value,
})

describe('event objects', () => {
  it('describes set on a new key as state:created with exactly the fields of the SPEC', async () => {
    const state = freshManager()
    const { events } = record(state)
    await state.set('orders', 'o1', { status: 'new', items: [1, 2] })
    await waitFor(() => events.length === 1, 5000, 'one event')
    expect(events[0]).toStrictEqual({
      type: 'state',
      event_type: 'state:created',
      group_id: 'orders',
      item_id: 'o1',
      old_value: null,
      new_value: { status: 'new', items: [1, 2] },
    })
    expect(Object.keys(events[0]).sort()).toEqual(['event_type', 'group_id', 'item_id', 'new_value', 'old_value', 'type'])
  })

  it('describes set on an existing key and update as state:updated with the old and new values', async () => {
    const state = freshManager()
    await state.set('orders', 'o1', { status: 'new' })
    const { events } = record(state)
    await state.set('orders', 'o1', { status: 'paid' })
    await state.update('orders', 'o1', [{ type: 'set', path: 'total', value: 12 }])
    await waitFor(() => events.length === 2, 5000, 'two events')
    expect(events).toStrictEqual([
      {
        type: 'state',
        event_type: 'state:updated',
        group_id: 'orders',
        item_id: 'o1',
        old_value: { status: 'new' },
        new_value: { status: 'paid' },
      },
      {
        type: 'state',
        event_type: 'state:updated',
        group_id: 'orders',
        item_id: 'o1',
        old_value: { status: 'paid' },
        new_value: { status: 'paid', total: 12 },
      },
    ])
  })

  it('describes update of a missing key as state:created starting from an empty object', async () => {
    const state = freshManager()
    const { events } = record(state)
    await state.update('counters', 'c', [{ type: 'increment', path: 'n', by: 2 }])
    await waitFor(() => events.length === 1, 5000, 'one event')
    expect(events).toStrictEqual([created('counters', 'c', { n: 2 })])
  })

  it('describes delete as state:deleted with a null new value and no reason', async () => {
    const state = freshManager()
    await state.set('orders', 'o1', 'gone soon')
    const { events } = record(state)
    await state.delete('orders', 'o1')
    await waitFor(() => events.length === 1, 5000, 'one event')
    expect(events).toStrictEqual([
      {
        type: 'state',
        event_type: 'state:deleted',
        group_id: 'orders',
        item_id: 'o1',
        old_value: 'gone soon',
        new_value: null,
      },
    ])
  })

  it('describes clear as one state:deleted with reason cleared per item, in insertion order', async () => {
    const state = freshManager()
    await state.set('g', 'a', 1)
    await state.set('g', 'b', { two: 2 })
    await state.set('g', 'c', [3])
    await state.set('g', 'a', 10)
    await state.set('other', 'x', 0)
    const { events } = record(state)
    await state.clear('g')
    await waitFor(() => events.length === 3, 5000, 'three events')
    const cleared = (key: string, old: unknown) => ({
      type: 'state',
      event_type: 'state:deleted',
      group_id: 'g',
      item_id: key,
      old_value: old,
      new_value: null,
      reason: 'cleared',
    })
    expect(events).toStrictEqual([cleared('a', 10), cleared('b', { two: 2 }), cleared('c', [3])])
    expect(await catchUp(state, events, 'other')).toHaveLength(3)
  })

  it('carries falsy values and unusual names exactly', async () => {
    const state = freshManager()
    const { events } = record(state)
    await state.set('a:b/c', 'k "quoted" é', 0)
    await state.set('a:b/c', 'k "quoted" é', false)
    await state.set('a:b/c', 'k "quoted" é', '')
    await state.set('a:b/c', 'k "quoted" é', null)
    await waitFor(() => events.length === 4, 5000, 'four events')
    expect(events.map((e) => [e.group_id, e.item_id, e.old_value, e.new_value])).toStrictEqual([
      ['a:b/c', 'k "quoted" é', null, 0],
      ['a:b/c', 'k "quoted" é', 0, false],
      ['a:b/c', 'k "quoted" é', false, ''],
      ['a:b/c', 'k "quoted" é', '', null],
    ])
  })

  it('gives each listener its own copy of the event', async () => {
    const state = freshManager()
    const first = record(state)
    state.onChange((event: StateChangeEvent) => {
      ;(event.new_value as { n: number }).n = 99
    })
    const last = record(state)
    await state.set('g', 'k', { n: 1 })
    await waitFor(() => first.events.length === 1 && last.events.length === 1, 5000, 'both listeners')
    expect(last.events[0].new_value).toEqual({ n: 1 })
    expect(await state.get('g', 'k')).toEqual({ n: 1 })
  })
})

describe('filters', () => {
  it('delivers only the changes of the filtered group', async () => {
    const state = freshManager()
    const orders = record(state, { group: 'orders' })
    await state.set('users', 'u1', 1)
    await state.set('orders', 'o1', 2)
    await state.set('orders-archive', 'o1', 3)
    await state.set('orders', 'o2', 4)
    const seen = await catchUp(state, orders.events, 'orders')
    expect(seen).toStrictEqual([created('orders', 'o1', 2), created('orders', 'o2', 4)])
  })

  it('delivers only the changes of the filtered key of the filtered group', async () => {
    const state = freshManager()
    const all = record(state)
    const oneKey = record(state, { group: 'orders', key: 'o1' })
    await state.set('orders', 'o2', 1)
    await state.set('users', 'o1', 2)
    await state.set('orders', 'o1', 3)
    await state.delete('orders', 'o1')
    await catchUp(state, all.events, 'orders')
    expect(oneKey.events.map((e) => [e.group_id, e.item_id, e.event_type])).toStrictEqual([
      ['orders', 'o1', 'state:created'],
      ['orders', 'o1', 'state:deleted'],
    ])
  })

  it('delivers only the events for which the condition returns true', async () => {
    const state = freshManager()
    const all = record(state, { group: 'orders' })
    const big = record(state, {
      group: 'orders',
      condition: (e: StateChangeEvent) => ((e.new_value as { total?: number } | null)?.total ?? 0) > 100,
    })
    await state.set('orders', 'small', { total: 5 })
    await state.set('orders', 'large', { total: 500 })
    await state.update('orders', 'small', [{ type: 'set', path: 'total', value: 101 }])
    await state.delete('orders', 'large')
    await state.set('users', 'rich', { total: 1000 })
    await catchUp(state, all.events, 'orders')
    expect(big.events.map((e) => [e.item_id, e.event_type, e.new_value])).toStrictEqual([
      ['large', 'state:created', { total: 500 }],
      ['small', 'state:updated', { total: 101 }],
    ])
  })

  it('skips the listener for an event whose condition throws, and reports the error', async () => {
    const state = freshManager()
    const reported: unknown[] = []
    state.on('error', (err: unknown) => reported.push(err))
    const all = record(state)
    const guarded = record(state, {
      condition: (e: StateChangeEvent) => {
        if (e.item_id === 'bad') throw new Error('condition failed')
        return true
      },
    })
    await state.set('g', 'bad', 1)
    await state.set('g', 'good', 2)
    await catchUp(state, all.events)
    expect(guarded.events.map((e) => e.item_id)).toEqual(['good', expect.stringMatching(/^marker-/)])
    expect(reported).toHaveLength(1)
  })

  it('throws INVALID_ARGUMENT for a filter or listener of the wrong shape', async () => {
    const state = freshManager()
    const codeOf = (call: () => unknown) => {
      try {
        call()
      } catch (err) {
        expect(err).toBeInstanceOf(TypeError)
        return (err as { code?: string }).code
      }
      return 'did not throw'
    }
    for (const filter of [null, 'orders', { group: '' }, { group: 5 }, { key: '' }, { condition: 'yes' }]) {
      expect(codeOf(() => state.onChange(() => {}, filter as never)), JSON.stringify(filter)).toBe('INVALID_ARGUMENT')
    }
    expect(codeOf(() => state.onChange('not a function' as never))).toBe('INVALID_ARGUMENT')
  })
})

describe('unsubscribing', () => {
  it('stops delivery, and calling the unsubscribe function twice is harmless', async () => {
    const state = freshManager()
    const all = record(state)
    const stopped = record(state)
    await state.set('g', 'before', 1)
    await waitFor(() => stopped.events.length === 1, 5000, 'the first event')
    stopped.off()
    expect(() => stopped.off()).not.toThrow()
    await state.set('g', 'after', 2)
    await state.delete('g', 'before')
    await catchUp(state, all.events)
    expect(stopped.events).toStrictEqual([created('g', 'before', 1)])
  })

  it('drops events that were committed but not yet delivered when it unsubscribes', async () => {
    const state = freshManager()
    const all = record(state)
    const stopped = record(state)
    await state.set('g', 'k', 1)
    stopped.off()
    await catchUp(state, all.events)
    expect(stopped.events).toEqual([])
  })
})

describe('delivery timing', () => {
  it('calls listeners on a later tick, after the write promise has resolved', async () => {
    const state = freshManager()
    const { events } = record(state)
    const pending = state.set('g', 'k', 1)
    expect(events).toEqual([])
    await pending
    expect(events, 'the listener must not run inside the write nor before its promise resolves').toEqual([])
    await Promise.resolve()
    expect(events).toEqual([])
    await waitFor(() => events.length === 1, 5000, 'the event')
  })

  it('does not make writers wait for an async listener that never settles', async () => {
    const state = freshManager()
    let calls = 0
    state.onChange(() => {
      calls += 1
      return new Promise(() => {})
    })
    for (let n = 1; n <= 5; n++) {
      await state.set('g', 'k', n)
      await waitFor(() => calls === n, 5000, `listener call ${n}`)
    }
    expect(await state.get('g', 'k')).toBe(5)
  })

  it('delivers 1,000 concurrent increments of one key as 1..1000 in commit order', async () => {
    const state = freshManager()
    const { events } = record(state, { group: 'counters', key: 'c' })
    const results = await Promise.all(
      Array.from({ length: 1000 }, () => state.update('counters', 'c', [{ type: 'increment', path: 'n', by: 1 }])),
    )
    expect(results.map((r) => (r.new_value as { n: number }).n).sort((a, b) => a - b)).toEqual(
      Array.from({ length: 1000 }, (_, i) => i + 1),
    )
    await waitFor(() => events.length === 1000, 10000, '1,000 events')
    expect(events.map((e) => (e.new_value as { n: number }).n)).toEqual(Array.from({ length: 1000 }, (_, i) => i + 1))
    expect(events.map((e) => (e.old_value as { n: number } | null)?.n ?? 0)).toEqual(
      Array.from({ length: 1000 }, (_, i) => i),
    )
    expect(events[0].event_type).toBe('state:created')
    expect(events.slice(1).every((e) => e.event_type === 'state:updated')).toBe(true)
  })
})

describe('failing listeners', () => {
  it('report a thrown error and a rejection through the error event without affecting the write or other listeners', async () => {
    const state = freshManager()
    const reported: Array<{ err: unknown; event: StateChangeEvent }> = []
    state.on('error', (err: unknown, event: StateChangeEvent) => reported.push({ err, event }))
    const warnings: Error[] = []
    const onWarning = (warning: Error) => warnings.push(warning)
    process.on('warning', onWarning)
    try {
      const before = record(state)
      state.onChange(() => {
        throw new Error('sync failure')
      })
      state.onChange(async () => {
        throw new Error('async failure')
      })
      const after = record(state)

      const result = await state.set('g', 'k', { n: 1 })
      expect(result).toEqual({ new_value: { n: 1 }, old_value: null })
      expect(await state.get('g', 'k')).toEqual({ n: 1 })
      await waitFor(() => reported.length === 2 && after.events.length === 1, 5000, 'two reports and the last listener')
      expect(before.events).toStrictEqual([created('g', 'k', { n: 1 })])
      expect(after.events).toStrictEqual([created('g', 'k', { n: 1 })])
      expect(reported.map(({ err }) => (err as Error).message).sort()).toEqual(['async failure', 'sync failure'])
      for (const { err, event } of reported) {
        expect(err).toBeInstanceOf(Error)
        expect(event).toStrictEqual(created('g', 'k', { n: 1 }))
      }

      // The failing listeners stay subscribed and keep being reported.
      await state.update('g', 'k', [{ type: 'increment', path: 'n', by: 1 }])
      await waitFor(() => reported.length === 4 && after.events.length === 2, 5000, 'the second round')
      expect(reported.slice(2).map(({ event }) => event.event_type)).toEqual(['state:updated', 'state:updated'])
      expect(warnings.filter((w) => w.name === 'StepstateListenerError')).toEqual([])
    } finally {
      process.off('warning', onWarning)
    }
  })

  it('emit a StepstateListenerError process warning when nobody listens for error', async () => {
    const state = freshManager()
    expect(state.listenerCount('error')).toBe(0)
    const warnings: Error[] = []
    const onWarning = (warning: Error) => {
      if (warning.name === 'StepstateListenerError') warnings.push(warning)
    }
    process.on('warning', onWarning)
    try {
      const after = record(state)
      state.onChange(() => {
        throw new Error('nobody catches this')
      })
      await state.set('g', 'k', 1)
      await waitFor(() => warnings.length === 1 && after.events.length === 1, 5000, 'the warning')
      expect(warnings[0].message).toContain('nobody catches this')
      expect(await state.get('g', 'k')).toBe(1)
    } finally {
      process.off('warning', onWarning)
    }
  })
})

describe('writes that change nothing', () => {
  it('fire no event for a delete of a missing key', async () => {
    const state = freshManager()
    const { events } = record(state)
    await state.set('g', 'present', 1)
    expect(await state.delete('g', 'missing')).toBeNull()
    expect(await state.delete('unknown-group', 'missing')).toBeNull()
    expect(await catchUp(state, events)).toStrictEqual([created('g', 'present', 1)])
  })

  it('fire no event for a rejected update or a rejected set', async () => {
    const state = freshManager({ maxValueBytes: 32 })
    await state.set('g', 'order', { status: 'pending' })
    const { events } = record(state)
    await expectRejection(
      () =>
        state.update('g', 'order', [
          { type: 'test', path: 'status', value: 'paid' },
          { type: 'set', path: 'status', value: 'shipped' },
        ]),
      'test.failed',
    )
    await expectRejection(() => state.update('g', 'order', [{ type: 'increment', path: 'status', by: 1 }]), 'increment.not_number')
    await expectRejection(() => state.update('g', 'new', [{ type: 'test', path: 'x', value: 1 }]), 'test.failed')
    await expectRejection(() => state.update('g', 'new', [{ type: 'nope' } as never]), 'INVALID_OP')
    await expectRejection(() => state.set('g', 'order', 'x'.repeat(100)), 'VALUE_TOO_LARGE')
    await expectRejection(() => state.set('g', 'order', undefined), 'INVALID_VALUE')
    expect(await catchUp(state, events)).toEqual([])
    expect(await state.keys('g')).toEqual(['order', expect.stringMatching(/^marker-/)])
  })
})

describe('watch', () => {
  it('yields the matching events in order to for await', async () => {
    const state = freshManager()
    const iterator = state.watch({ group: 'orders' })
    await state.set('orders', 'o1', 1)
    await state.set('users', 'u1', 1)
    await state.set('orders', 'o1', 2)
    await state.delete('orders', 'o1')
    const seen: StateChangeEvent[] = []
    for await (const event of iterator) {
      seen.push(event)
      if (seen.length === 3) break
    }
    expect(seen.map((e) => [e.item_id, e.event_type, e.new_value])).toStrictEqual([
      ['o1', 'state:created', 1],
      ['o1', 'state:updated', 2],
      ['o1', 'state:deleted', null],
    ])
  })

  it('unsubscribes on break, so later writes never reach the iterator', async () => {
    const state = freshManager()
    const iterator = state.watch({ group: 'orders' })
    await state.set('orders', 'o1', 1)
    for await (const event of iterator) {
      expect(event).toStrictEqual(created('orders', 'o1', 1))
      break
    }
    const all = record(state, { group: 'orders' })
    await state.set('orders', 'o2', 2)
    await catchUp(state, all.events, 'orders')
    expect(await iterator.next()).toEqual({ value: undefined, done: true })
  })

  it('is done after break even when more events had already been buffered', async () => {
    const state = freshManager()
    const iterator = state.watch({ group: 'orders' })
    const all = record(state, { group: 'orders' })
    await state.set('orders', 'o1', 1)
    await state.set('orders', 'o2', 2)
    await catchUp(state, all.events, 'orders')
    for await (const event of iterator) {
      expect(event).toStrictEqual(created('orders', 'o1', 1))
      break
    }
    expect(await iterator.next(), 'next() after return() must report done').toEqual({ value: undefined, done: true })
  })

  it('waits for the next event when none is buffered', async () => {
    const state = freshManager()
    const iterator = state.watch()
    const next = iterator.next()
    await state.set('g', 'k', 'v')
    expect(await next).toEqual({ value: created('g', 'k', 'v'), done: false })
    await iterator.return?.()
  })

  it('ends pending iterators when the manager closes', async () => {
    const state = freshManager()
    const iterator = state.watch({ group: 'g' })
    const pending = iterator.next()
    const looped: StateChangeEvent[] = []
    const loop = (async () => {
      for await (const event of state.watch()) looped.push(event)
      return 'ended'
    })()
    await state.set('g', 'k', 1)
    expect(await pending).toEqual({ value: created('g', 'k', 1), done: false })
    await waitFor(() => looped.length === 1, 5000, 'the loop to receive the event')
    const stillPending = iterator.next()
    await state.close()
    expect(await stillPending).toEqual({ value: undefined, done: true })
    expect(await loop).toBe('ended')
    expect(looped).toStrictEqual([created('g', 'k', 1)])
    expect(await iterator.next()).toEqual({ value: undefined, done: true })
  })
})

describe('process lifetime', () => {
  /** Runs `script` in a fresh `node -e` with the repository root as argv[1]. */
  function runChild(script: string) {
    const started = Date.now()
    const child = spawnSync(process.execPath, ['-e', script, repositoryRoot], { encoding: 'utf8', timeout: 10000 })
    return { child, elapsed: Date.now() - started }
  }

  it('lets a process whose listener has received its events exit by itself', () => {
    // The timer keeps the process alive only briefly; a subscription that held the event loop
    // would keep it alive until the 10 s timeout kills it.
    const { child, elapsed } = runChild(`
      const { StateManager } = require(process.argv[1])
      const state = new StateManager()
      state.onChange((event) => console.log('EVENT ' + JSON.stringify(event)))
      state.set('g', 'k', { n: 1 }).then(() => console.log('WRITTEN'))
      setTimeout(() => {}, 200)
    `)
    expect(child.error, 'the child must exit by itself, not be killed at the timeout').toBeUndefined()
    expect(child.signal).toBeNull()
    expect(child.status, child.stderr).toBe(0)
    expect(elapsed).toBeLessThan(5000)
    const line = child.stdout.split('\n').find((l) => l.startsWith('EVENT '))
    expect(line, `stdout: ${child.stdout}`).toBeDefined()
    expect(JSON.parse(line!.slice('EVENT '.length))).toStrictEqual(created('g', 'k', { n: 1 }))
  })

  it('delivers the event of a committed write before a process with nothing else to do exits', () => {
    const { child, elapsed } = runChild(`
      const { StateManager } = require(process.argv[1])
      const state = new StateManager()
      state.onChange((event) => console.log('EVENT ' + JSON.stringify(event)))
      state.set('g', 'k', { n: 1 }).then(() => console.log('WRITTEN'))
    `)
    expect(child.error, 'the child must exit by itself, not be killed at the timeout').toBeUndefined()
    expect(child.signal).toBeNull()
    expect(child.status, child.stderr).toBe(0)
    expect(elapsed).toBeLessThan(5000)
    expect(child.stdout).toContain('WRITTEN')
    const line = child.stdout.split('\n').find((l) => l.startsWith('EVENT '))
    expect(line, `the listener must receive the event before the process exits; stdout: ${child.stdout}`).toBeDefined()
    expect(JSON.parse(line!.slice('EVENT '.length))).toStrictEqual(created('g', 'k', { n: 1 }))
  })
})
