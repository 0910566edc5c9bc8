// The read cache of a manager (lib/cache.js, kept by the memory, file and Redis backends): values
// it serves must be exactly what the store holds now, whoever changed them (another manager of
// the same store, another thread or process, expiry), and every value handed out must be a
// fresh copy. Also the fast path of `set`, which copies an object as JSON data instead of
// parsing its text back: its `new_value` must be exactly JSON.parse(JSON.stringify(value)) for
// any value, checked on random values.
import { createRequire } from 'node:module'
import { join } from 'node:path'
import { Worker } from 'node:worker_threads'
import { afterEach, describe, expect, it } from 'vitest'
import { StateManager } from '../index.js'
import { ValueCache, toJsonData, UNHANDLED } from '../lib/cache.js'
import { expectRejection } from './helpers/assertions'
import { adapterUnderTest, closeManagers, freshManager, freshPrefix, tempDirectory, track } from './helpers/managers'
import { waitFor } from './helpers/wait-for'

afterEach(closeManagers)

const root = join(__dirname, '..')

/** Two managers of one store in this process, which share the store, not their caches: two of
 *  one Redis prefix in the Redis pass, else two of one file store (one engine). */
async function twoManagersOfOneStore(): Promise<[StateManager, StateManager]> {
  const options =
    adapterUnderTest === 'redis'
      ? { adapter: 'redis' as const, url: process.env.STEPSTATE_TEST_REDIS_URL, prefix: freshPrefix() }
      : { adapter: 'file' as const, path: tempDirectory() }
  const first = track(await StateManager.open(options))
  const second = track(await StateManager.open(options))
  return [first, second]
}

/** Runs `writes` ([method, ...args] lists) on the file store at `path` from a worker thread. */
async function writeFromWorker(path: string, writes: unknown[][]): Promise<void> {
  const worker = new Worker(join(__dirname, 'helpers', 'write-worker.cjs'), { workerData: { root, path, writes } })
  const reply = await new Promise<{ error?: string }>((resolve, reject) => {
    worker.once('message', resolve)
    worker.once('error', reject)
  })
  await worker.terminate()
  expect(reply.error).toBeUndefined()
}

describe('values served from the cache', () => {
  it('are read again once another manager of the same store changed them', async () => {
    const [mine, other] = await twoManagersOfOneStore()
    await mine.set('g', 'k', { v: 1 })
    expect(await mine.get('g', 'k')).toEqual({ v: 1 })
    await other.set('g', 'k', { v: 2 })
    expect(await mine.get('g', 'k')).toEqual({ v: 2 })
    await other.update('g', 'k', [{ type: 'increment', path: 'v', by: 1 }])
    expect(await mine.get('g', 'k')).toEqual({ v: 3 })
    await other.delete('g', 'k')
    expect(await mine.get('g', 'k')).toBeNull()
    await other.set('g', 'k', { v: 4 })
    expect(await mine.get('g', 'k')).toEqual({ v: 4 })
    await other.clear('g')
    await other.set('g', 'k', { v: 5 })
    expect(await mine.get('g', 'k')).toEqual({ v: 5 })
  })

  it('give the true old_value when another manager wrote since this one cached the key', async () => {
    const [mine, other] = await twoManagersOfOneStore()
    await mine.set('g', 'k', { v: 1 })
    await other.set('g', 'k', { v: 2 })
    expect(await mine.set('g', 'k', { v: 3 })).toEqual({ new_value: { v: 3 }, old_value: { v: 2 } })
    await other.set('g', 'k', { v: 4 })
    expect(await mine.update('g', 'k', [{ type: 'set', path: 'w', value: 0 }])).toEqual({
      new_value: { v: 4, w: 0 },
      old_value: { v: 4 },
    })
    await other.set('g', 'k', { v: 5 })
    expect(await mine.delete('g', 'k')).toEqual({ v: 5 })
    // The old value of a write after a write of this manager is the one it wrote.
    await mine.set('g', 'k', { v: 6 })
    expect(await mine.set('g', 'k', { v: 7 })).toEqual({ new_value: { v: 7 }, old_value: { v: 6 } })
    expect(await mine.update('g', 'k', [{ type: 'increment', path: 'v', by: 1 }])).toEqual({
      new_value: { v: 8 },
      old_value: { v: 7 },
    })
    expect(await mine.delete('g', 'k')).toEqual({ v: 8 })
    expect(await mine.delete('g', 'k')).toBeNull()
  })

  it('calls of one key made together, unawaited, each see the writes made before them', async () => {
    const state = freshManager()
    await state.set('g', 'k', { v: 1 })
    for (let i = 0; i < 3; i++) expect(await state.get('g', 'k')).toEqual({ v: 1 })
    const increment = [{ type: 'increment', path: 'v', by: 1 }] as const
    const results = await Promise.all([
      state.get('g', 'k'),
      state.set('g', 'k', { v: 2 }),
      state.get('g', 'k'),
      state.update('g', 'k', increment as never),
      state.get('g', 'k'),
      state.delete('g', 'k'),
      state.get('g', 'k'),
      state.update('g', 'k', increment as never),
      state.set('g', 'k', { v: 5 }),
      state.get('g', 'k'),
    ])
    expect(results).toEqual([
      { v: 1 },
      { new_value: { v: 2 }, old_value: { v: 1 } },
      { v: 2 },
      { new_value: { v: 3 }, old_value: { v: 2 } },
      { v: 3 },
      { v: 3 },
      null,
      { new_value: { v: 1 }, old_value: null },
      { new_value: { v: 5 }, old_value: { v: 1 } },
      { v: 5 },
    ])
    // Every result is a value of its own.
    for (let i = 0; i < results.length; i++) {
      for (let j = i + 1; j < results.length; j++) {
        if (results[i] !== null && results[j] !== null) expect(results[i]).not.toBe(results[j])
      }
    }
    expect(await state.get('g', 'k')).toEqual({ v: 5 })
  })

  it('see writes of another worker_thread, for items and for whole groups', async () => {
    const path = tempDirectory()
    const state = track(await StateManager.open({ adapter: 'file', path }))
    await state.set('g', 'a', { v: 1 })
    await state.set('g', 'b', { v: 1 })
    for (let i = 0; i < 3; i++) {
      expect(await state.get('g', 'a')).toEqual({ v: 1 })
      expect(await state.getGroup('g')).toEqual([{ v: 1 }, { v: 1 }])
    }
    await writeFromWorker(path, [
      ['set', 'g', 'a', { v: 2 }],
      ['update', 'g', 'b', [{ type: 'increment', path: 'v', by: 10 }]],
    ])
    expect(await state.get('g', 'a')).toEqual({ v: 2 })
    expect(await state.getGroup('g')).toEqual([{ v: 2 }, { v: 11 }])
    await writeFromWorker(path, [['delete', 'g', 'a']])
    expect(await state.getGroup('g')).toEqual([{ v: 11 }])
    expect(await state.get('g', 'a')).toBeNull()
  }, 30_000)

  it('vanish when they expire, from get and from a cached getGroup', async () => {
    const state = freshManager()
    await state.set('g', 'short', { v: 1 }, { ttl: 0.15 })
    await state.set('g', 'long', { v: 2 })
    for (let i = 0; i < 3; i++) {
      expect(await state.get('g', 'short')).toEqual({ v: 1 })
      expect(await state.getGroup('g')).toEqual([{ v: 1 }, { v: 2 }])
    }
    await waitFor(async () => (await state.get('g', 'short')) === null, 3000, 'the item to expire')
    expect(await state.getGroup('g')).toEqual([{ v: 2 }])
  })

  it('are copies: mutating any returned value changes neither the store nor later results', async () => {
    const state = freshManager()
    const set = await state.set('g', 'k', { n: 1, nested: { list: [1, { deep: true }] } })
    set.new_value.nested.list.push('set')
    const first = await state.get('g', 'k')
    first.nested.list[1].deep = 'get'
    const second = await state.get('g', 'k')
    expect(second).not.toBe(first)
    expect(second).toEqual({ n: 1, nested: { list: [1, { deep: true }] } })
    const replaced = await state.set('g', 'k', { n: 2, nested: { list: [] } })
    replaced.old_value.nested.list.push('old')
    replaced.new_value.nested.list.push('new')
    const updated = await state.update('g', 'k', [{ type: 'append', path: 'nested.list', value: 'u' }])
    expect(updated.old_value).toEqual({ n: 2, nested: { list: [] } })
    updated.new_value.nested.list.push('changed')
    updated.old_value.nested.list.push('changed')
    expect(await state.get('g', 'k')).toEqual({ n: 2, nested: { list: ['u'] } })
    for (let i = 0; i < 4; i++) {
      const values = await state.getGroup('g')
      expect(values).toEqual([{ n: 2, nested: { list: ['u'] } }])
      values[0].nested.list.push(`read ${i}`)
      values.push('extra')
    }
    const removed = await state.delete('g', 'k')
    expect(removed).toEqual({ n: 2, nested: { list: ['u'] } })
  })
})

describe('update of a cached value', () => {
  it('gives exactly what a manager without a cache gives, for 300 random op lists', async () => {
    const cached = freshManager()
    const plain = freshManager({ cacheBytes: 0 })
    const next = random(7)
    const pick = <T>(items: T[]): T => items[Math.floor(next() * items.length)]
    const names = ['a', 'b', '10', '2', 'list', 'nested']
    const randomOp = () => {
      const path = pick([pick(names), `${pick(names)}.${pick(names)}`, [pick(names)], `/${pick(names)}`])
      return pick([
        { type: 'set', path, value: pick([1, 'text', { x: [1, 2] }, null, -0]) },
        { type: 'increment', path, by: pick([1, 2.5, -3]) },
        { type: 'append', path, value: pick([1, { y: 2 }]) },
        { type: 'remove', path },
        { type: 'merge', value: { merged: next() } },
        { type: 'merge', path, value: { m: 1 } },
      ])
    }
    let changedOnly = 0
    for (let i = 0; i < 300; i++) {
      const key = `k${i % 7}`
      if (i % 50 === 0) {
        const start = { a: 1, nested: { b: 2 }, list: [] }
        expect(await cached.set('g', key, start)).toEqual(await plain.set('g', key, start))
      }
      const ops = Array.from({ length: 1 + Math.floor(next() * 3) }, randomOp)
      const [mine, theirs] = await Promise.all(
        [cached, plain].map((state) =>
          state.update('g', key, ops as never).then(
            (result) => ({ result }),
            (err: { code: string; opIndex?: number }) => ({ error: [err.code, err.opIndex] }),
          ),
        ),
      )
      const where = `update ${i}: ${JSON.stringify(ops)}`
      expect(mine, where).toEqual(theirs)
      if ('result' in mine && 'result' in theirs) {
        expect(sameJson(mine.result.new_value, theirs.result.new_value), where).toBeNull()
        expect(sameJson(mine.result.old_value, theirs.result.old_value), where).toBeNull()
        if (ops.every((op) => op.type !== 'merge' || op.path !== undefined)) changedOnly += 1
      }
      expect(sameJson(await cached.get('g', key), await plain.get('g', key)), where).toBeNull()
    }
    expect(changedOnly).toBeGreaterThan(50)
  })
})

describe('an update that changes one member to a number', () => {
  // The in-process store answers such an update (a counter's) with the member's name and the
  // number in its call status (src/store.rs `update`), which the cache sets on its value: the
  // name itself (ANSWER 1), or where it is in the binding's array of kept names (ANSWER 2 + i).
  const binding = createRequire(import.meta.url)('../binding.js')
  const status = binding.callStatus() as Float64Array
  const memberNames = binding.memberNames() as string[]
  const ANSWER = 4
  const byName = () => status[ANSWER] >= 1

  it('gives what a manager without a cache gives, for names and numbers of every kind', async () => {
    const cached = track(new StateManager())
    const plain = track(new StateManager({ cacheBytes: 0 }))
    const names = ['n', 'é名', '😀', 'toString', 'a":1', 'quote"', 'back\\slash', 'tab\t', '', '{', '[', '0', '1e3']
    const numbers = [1, -1, 0.5, -2.75, 1e21, 1e-7, 5e-324, 2 ** 53 - 1, 2 ** 60, -(2 ** 53), 1e300, 123456.789]
    let answeredByName = 0
    for (const name of names) {
      for (const number of numbers) {
        const key = `k${names.indexOf(name)}`
        const start = { first: 1, [name]: 0, last: true }
        await cached.set('g', key, start)
        await plain.set('g', key, start)
        // Three uses make the key a cached one (see ValueCache); then two updates each.
        for (let i = 0; i < 2; i++) await cached.get('g', key)
        for (const ops of [
          [{ type: 'set', path: [name], value: number }],
          [{ type: 'increment', path: [name], by: number }],
        ]) {
          const mine = await cached.update('g', key, ops as never)
          if (byName()) answeredByName += 1
          const theirs = await plain.update('g', key, ops as never)
          const where = `${JSON.stringify(name)} ${JSON.stringify(ops)}`
          expect(sameJson(mine.new_value, theirs.new_value), where).toBeNull()
          expect(sameJson(mine.old_value, theirs.old_value), where).toBeNull()
          expect(sameJson(await cached.get('g', key), theirs.new_value), where).toBeNull()
        }
      }
    }
    // Names with an escape in JSON (a quote, a backslash, a tab) take the general answer.
    expect(answeredByName).toBeGreaterThan(numbers.length * 2 * 8)
  })

  it('is right for many more counters than the binding keeps names of, in turn', async () => {
    // The binding keeps the JS strings of the last 16 names it answered with (src/names.rs):
    // 40 counters in turn, each name coming back after 39 others, replace every one of them.
    const state = track(new StateManager())
    const names = Array.from({ length: 40 }, (_, i) => `counter${i}`)
    await state.set('g', 'c', Object.fromEntries(names.map((name) => [name, 0])))
    // From its fourth use on, a key's value is cached (see ValueCache).
    for (let i = 0; i < 3; i++) await state.get('g', 'c')
    let answeredByName = 0
    for (let round = 1; round <= 3; round++) {
      for (const name of names) {
        const { new_value, old_value } = await state.update('g', 'c', [{ type: 'increment', path: name, by: 1 }])
        if (byName()) answeredByName += 1
        expect(new_value[name]).toBe(round)
        expect(old_value[name]).toBe(round - 1)
        expect(Object.keys(new_value)).toEqual(names)
      }
    }
    expect(answeredByName).toBe(names.length * 3)
    // And the names kept last, again and again, in the places of names they replaced.
    for (let i = 0; i < 3; i++) {
      for (const name of names.slice(-5)) {
        const { new_value } = await state.update('g', 'c', [{ type: 'increment', path: name, by: 1 }])
        expect(new_value[name]).toBe(4 + i)
        // Kept: answered by its place among the kept names.
        expect(status[ANSWER]).toBeGreaterThanOrEqual(2)
        expect(memberNames[status[ANSWER] - 2]).toBe(name)
      }
    }
    const counts = Object.fromEntries(names.map((name, i) => [name, i < 35 ? 3 : 6]))
    expect(await state.get('g', 'c')).toEqual(counts)
  })

  it('changes only the manager\'s own copy: earlier results and the value set stay as they were', async () => {
    const state = track(new StateManager())
    const value = { count: 1, list: [1] }
    await state.set('g', 'c', value)
    for (let i = 0; i < 2; i++) await state.get('g', 'c')
    const results = []
    for (let i = 0; i < 3; i++) results.push(await state.update('g', 'c', [{ type: 'increment', path: 'count', by: 1 }]))
    expect(byName()).toBe(true)
    expect(value).toEqual({ count: 1, list: [1] })
    expect(results.map((r) => [r.old_value.count, r.new_value.count])).toEqual([[1, 2], [2, 3], [3, 4]])
    results[2].new_value.count = 100
    expect(await state.get('g', 'c')).toEqual({ count: 4, list: [1] })
  })
})

describe('the cacheBytes option', () => {
  it('keeps every method exact with the cache off (0) or smaller than the values', async () => {
    // 150 bytes hold the small value's entry but neither the big one nor the group.
    for (const cacheBytes of [0, 150]) {
      const state = freshManager({ cacheBytes })
      const big = { text: 'x'.repeat(100) }
      await state.set('g', 'small', { v: 1 })
      await state.set('g', 'big', big)
      for (let i = 0; i < 3; i++) {
        expect(await state.get('g', 'small')).toEqual({ v: 1 })
        expect(await state.get('g', 'big')).toEqual(big)
        expect(await state.getGroup('g')).toEqual([{ v: 1 }, big])
      }
      expect(await state.set('g', 'big', { v: 2 })).toEqual({ new_value: { v: 2 }, old_value: big })
      expect(await state.update('g', 'small', [{ type: 'increment', path: 'v', by: 1 }])).toEqual({
        new_value: { v: 2 },
        old_value: { v: 1 },
      })
      expect(await state.delete('g', 'big')).toEqual({ v: 2 })
      expect(await state.getGroup('g')).toEqual([{ v: 2 }])
    }
  })

  it('rejects what is not 0 or a positive integer with INVALID_ARGUMENT', async () => {
    for (const cacheBytes of [-1, 1.5, '1024', null, Number.NaN]) {
      const err = await expectRejection(() => StateManager.open({ cacheBytes } as never), 'INVALID_ARGUMENT')
      expect(err).toBeInstanceOf(TypeError)
      expect(err.message).toContain('cacheBytes')
    }
  })
})

describe('ValueCache', () => {
  it('stays within its budget however many groups and keys pass through it', () => {
    const cache = new ValueCache(10_000)
    for (let i = 0; i < 5_000; i++) {
      cache.putGroup(`group ${i}`, i + 1, null, 0) // a group read once
      cache.putItem(`g${i}`, 'k', i + 1, { i }, 8)
      if (i % 2 === 0) cache.dropItem(`g${i}`, 'k')
      expect(cache.bytes).toBeLessThanOrEqual(10_000)
    }
    expect(cache.groups.size + cache.items.size).toBeLessThan(200)
    // An item map left empty goes with its last item.
    cache.clear()
    cache.putItem('g', 'k', 1, 1, 1)
    cache.dropItem('g', 'k')
    expect(cache.items.size).toBe(0)
    expect(cache.bytes).toBe(0)
  })
})

/** A small deterministic PRNG (mulberry32), so a failing value can be reproduced. */
function random(seed: number) {
  return () => {
    seed = (seed + 0x6d2b79f5) | 0
    let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

class Point {
  constructor(
    public x: number,
    public y: number,
  ) {}
}

/** A random value of the kind a handler might pass to `set`, JSON or not quite. */
function randomValue(next: () => number, depth = 0): unknown {
  const pick = <T>(items: T[]): T => items[Math.floor(next() * items.length)]
  const leaves: Array<() => unknown> = [
    () => pick(['', 'text', 'ünï\u{1F600}', '"quoted"\n', '__proto__']),
    () => pick([0, -0, 1, -1.5, 2 ** 53 - 1, 1e300, Number.NaN, Infinity, -Infinity]),
    () => next() < 0.5,
    () => null,
    () => undefined,
    () => () => 1,
    () => Symbol('s'),
    () => new Date(Math.floor(next() * 1e12)),
    () => {
      const json = pick(['from toJSON', 1, null])
      return { toJSON: () => json }
    },
    () => new Point(1, 2),
    () => Object.assign(Object.create(null), { bare: 1 }),
    () => new Number(3),
    () => new Map([[1, 2]]),
  ]
  if (depth >= 4 || next() < 0.4) return pick(leaves)()
  if (next() < 0.5) {
    const length = Math.floor(next() * 5)
    const array: unknown[] = []
    for (let i = 0; i < length; i++) array.push(randomValue(next, depth + 1))
    if (next() < 0.1) array.length += 2 // holes
    return array
  }
  const object: Record<string, unknown> = {}
  const names = ['a', 'b', '10', '2', '01', 'key with space', '__proto__', 'toString']
  const count = Math.floor(next() * 5)
  for (let i = 0; i < count; i++) {
    const name = pick(names)
    const value = randomValue(next, depth + 1)
    Object.defineProperty(object, name, { value, enumerable: true, writable: true, configurable: true })
  }
  return object
}

/** Whether `actual` is `expected` exactly: same JSON types, field order, prototypes and -0. */
function sameJson(actual: unknown, expected: unknown, path = '$'): string | null {
  if (typeof expected !== 'object' || expected === null) {
    return Object.is(actual, expected) ? null : `${path}: ${String(actual)} is not ${String(expected)}`
  }
  if (typeof actual !== 'object' || actual === null) return `${path}: ${String(actual)} is not an object`
  if (Array.isArray(expected) !== Array.isArray(actual)) return `${path}: array and object differ`
  const proto = Array.isArray(expected) ? Array.prototype : Object.prototype
  if (Object.getPrototypeOf(actual) !== proto) return `${path}: wrong prototype`
  const names = Reflect.ownKeys(actual as object)
  const expectedNames = Reflect.ownKeys(expected as object)
  if (JSON.stringify(names.map(String)) !== JSON.stringify(expectedNames.map(String))) {
    return `${path}: fields ${String(names)} are not ${String(expectedNames)}`
  }
  for (const name of expectedNames) {
    if (name === 'length') continue
    const problem = sameJson(
      (actual as Record<string, unknown>)[name as string],
      (expected as Record<string, unknown>)[name as string],
      `${path}.${String(name)}`,
    )
    if (problem !== null) return problem
  }
  return null
}

describe('set of an object or array', () => {
  it('returns and stores exactly JSON.parse(JSON.stringify(value)), for 500 random values', async () => {
    const state = freshManager()
    const next = random(20261121)
    let previous: unknown = null
    let fastPath = 0
    for (let i = 0; i < 500; i++) {
      const value = randomValue(next)
      if (typeof value !== 'object' || value === null || value instanceof Map || value instanceof Number) continue
      const text = JSON.stringify(value)
      const expected = text === undefined ? undefined : JSON.parse(text)
      if (expected === undefined) continue
      if (toJsonData(value) !== UNHANDLED) fastPath += 1
      const result = await state.set('g', 'k', value)
      const where = `value ${i}: ${text}`
      expect(sameJson(result.new_value, expected), where).toBeNull()
      expect(sameJson(result.old_value, previous), where).toBeNull()
      expect(sameJson(await state.get('g', 'k'), expected), where).toBeNull()
      expect(sameJson((await state.getGroup('g'))[0], expected), where).toBeNull()
      previous = expected
    }
    // Both paths are exercised: values the copy handles, and values that fall back to parsing.
    expect(fastPath).toBeGreaterThan(100)
    expect(fastPath).toBeLessThan(400)
  })

  it('reads each field once, as JSON.stringify does', async () => {
    const state = freshManager()
    let reads = 0
    const value = {
      get counted() {
        reads += 1
        return reads
      },
      nested: [{ plain: true }],
    }
    const { new_value } = await state.set('g', 'k', value)
    expect(reads).toBe(1)
    expect(new_value).toEqual({ counted: 1, nested: [{ plain: true }] })
    expect(await state.get('g', 'k')).toEqual({ counted: 1, nested: [{ plain: true }] })
  })

  it('keeps an own __proto__ field as a field, never as a prototype', async () => {
    const state = freshManager()
    const value = JSON.parse('{"__proto__":{"polluted":true},"a":1}')
    const { new_value } = await state.set('g', 'k', value)
    for (const read of [new_value, await state.get('g', 'k'), await state.get('g', 'k')]) {
      expect(Object.getPrototypeOf(read)).toBe(Object.prototype)
      expect(Object.keys(read)).toEqual(['__proto__', 'a'])
      expect((read as { polluted?: boolean }).polluted).toBeUndefined()
    }
  })

  it('still rejects cycles and BigInts with INVALID_VALUE and stores nothing', async () => {
    const state = freshManager()
    const cyclic: Record<string, unknown> = { a: 1 }
    cyclic.self = cyclic
    const deep: Record<string, unknown> = {}
    let at = deep
    for (let i = 0; i < 200; i++) at = at.next = {}
    at.cycle = deep
    for (const value of [cyclic, { n: 1n }, [1, [2n]], deep]) {
      await expectRejection(() => state.set('g', 'k', value), 'INVALID_VALUE')
    }
    expect(await state.get('g', 'k')).toBeNull()
  })
})
