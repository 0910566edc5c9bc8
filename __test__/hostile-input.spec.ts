// What a caller can hand the store that it must survive: ops the documented examples use,
// values too deep or too long to be read back, user code that throws while its arguments are
// checked, filters no name can match, and subscriptions made and ended by the hundred thousand.
// Every rejection carries a `code`, and no rejected call changes the store.
import { execFileSync } from 'node:child_process'
import { join } from 'node:path'
import { afterEach, describe, expect, it } from 'vitest'
import { StateError, StateManager } from '../index.js'
import { expectRejection, expectRejectionLeavesStoreUnchanged } from './helpers/assertions'
import { adapterUnderTest, closeManagers, freshManager, tempDirectory, track } from './helpers/managers'

afterEach(closeManagers)

/** A manager holding a little of everything, so that "unchanged" has something to compare. */
async function seededManager(): Promise<StateManager> {
  const state = freshManager()
  await state.set('users', 'u1', { name: 'Ada', visits: 1 })
  await state.set('orders', 'o1', { status: 'pending', items: ['a'] })
  await state.set('g', 'k', { previous: true })
  return state
}

/** An object nested `levels` objects deep: `{ a: { a: ... {} } }`. */
function nestedObject(levels: number): Record<string, unknown> {
  let value: Record<string, unknown> = {}
  for (let i = 1; i < levels; i++) value = { a: value }
  return value
}

describe('JSON-Patch replace', () => {
  it('of a missing member sets it, as the Python reference records a login', async () => {
    const state = freshManager()
    await state.set('users', 'u1', { name: 'Ada', login_count: 0 })
    const lastLogin = '2024-05-01T10:00:00.000Z'
    const result = await state.update('users', 'u1', [
      { op: 'increment', path: '/login_count', value: 1 },
      { op: 'replace', path: '/last_login', value: lastLogin },
    ])
    expect(result).toEqual({
      new_value: { name: 'Ada', login_count: 1, last_login: lastLogin },
      old_value: { name: 'Ada', login_count: 0 },
    })
    expect(await state.get('users', 'u1')).toEqual({ name: 'Ada', login_count: 1, last_login: lastLogin })
  })

  it('after a test of the current value keeps the strict precondition of RFC 6902', async () => {
    const state = await seededManager()
    const err = await expectRejectionLeavesStoreUnchanged(
      state,
      () =>
        state.update('users', 'u1', [
          { op: 'test', path: '/last_login', value: null },
          { op: 'replace', path: '/last_login', value: 'now' },
        ]),
      'test.failed',
    )
    expect(err.opIndex).toBe(0)
  })
})

describe('values nested too deep to be read back', () => {
  it('accepts a value nested exactly 100 levels deep and reads it back', async () => {
    const state = freshManager()
    const value = nestedObject(100)
    expect((await state.set('g', 'deep', value)).new_value).toEqual(value)
    expect(await state.get('g', 'deep')).toEqual(value)
    expect(await state.getGroup('g')).toEqual([value])
  })

  it.each([101, 4000])('set of an object nested %i levels deep rejects with INVALID_VALUE and leaves the store as it was', async (levels) => {
    const state = await seededManager()
    const err = await expectRejectionLeavesStoreUnchanged(state, () => state.set('g', 'k', nestedObject(levels)), 'INVALID_VALUE', [['g', 'k']])
    expect(err).toBeInstanceOf(StateError)
    expect(err.message).toContain('"g"/"k"')
    expect(await state.get('g', 'k')).toEqual({ previous: true })
    expect(await state.getGroup('g')).toEqual([{ previous: true }])
    await expectRejectionLeavesStoreUnchanged(state, () => state.set('g', 'new', nestedObject(levels)), 'INVALID_VALUE', [['g', 'new']])
  })

  it('counts nesting as JSON.stringify writes it: through toJSON, Dates and arrays', async () => {
    const state = await seededManager()
    const viaToJSON = { toJSON: () => nestedObject(101) }
    const viaArrays = JSON.parse('['.repeat(101) + ']'.repeat(101))
    const withDate = { at: new Date(0), nested: nestedObject(100) }
    for (const value of [viaToJSON, viaArrays, withDate]) {
      await expectRejectionLeavesStoreUnchanged(state, () => state.set('g', 'k', value), 'INVALID_VALUE', [['g', 'k']])
    }
  })

  it('a file store that rejected a deep value reopens and reads every value', async () => {
    const path = tempDirectory()
    const state = track(await StateManager.open({ adapter: 'file', path }))
    await state.set('g', 'k', { previous: true })
    await expectRejection(() => state.set('g', 'k', nestedObject(4000)), 'INVALID_VALUE')
    await expectRejection(() => state.set('g', 'other', nestedObject(4000)), 'INVALID_VALUE')
    await state.close()
    const reopened = track(await StateManager.open({ adapter: 'file', path }))
    expect(await reopened.get('g', 'k')).toEqual({ previous: true })
    expect(await reopened.getGroup('g')).toEqual([{ previous: true }])
  })

  it('an update op value nested deeper than JSON can be parsed rejects with path.too_deep at its opIndex', async () => {
    const state = await seededManager()
    const err = await expectRejectionLeavesStoreUnchanged(
      state,
      () =>
        state.update('g', 'k', [
          { type: 'set', path: 'ok', value: 1 },
          { op: 'add', path: '/deep', value: nestedObject(300) },
        ]),
      'path.too_deep',
      [['g', 'k']],
    )
    expect(err).toBeInstanceOf(StateError)
    expect(err.opIndex).toBe(1)
  })

  it('an update whose result would nest deeper than 100 levels rejects with path.too_deep', async () => {
    const state = await seededManager()
    const err = await expectRejectionLeavesStoreUnchanged(
      state,
      () => state.update('g', 'k', [{ type: 'set', path: 'deep', value: nestedObject(100) }]),
      'path.too_deep',
      [['g', 'k']],
    )
    expect(err.opIndex).toBe(0)
  })
})

describe('values too long to be read back', () => {
  // A value's JSON text may have at most (2^29 − 24 − 3) / 2 = 268,435,442 bytes of UTF-8: half
  // of V8's largest string, so that an update's new and old values come back together.
  const MAX_VALUE_TEXT_BYTES = 268_435_442

  it('set of a string one character past the limit rejects with VALUE_TOO_LARGE and stores nothing', async () => {
    const state = await seededManager()
    const value = '€'.repeat(Math.floor((MAX_VALUE_TEXT_BYTES - 2) / 3) + 1) // 3 bytes each, plus two quotes
    expect(Buffer.byteLength(JSON.stringify(value))).toBeGreaterThan(MAX_VALUE_TEXT_BYTES)
    expect(Buffer.byteLength(JSON.stringify(value))).toBeLessThan(MAX_VALUE_TEXT_BYTES + 4)
    await expectRejectionLeavesStoreUnchanged(state, () => state.set('g', 'k', value), 'VALUE_TOO_LARGE', [['g', 'k']])
  })

  it('set of a non-ASCII string longer than V8 can give back as UTF-8 rejects with VALUE_TOO_LARGE, and later writes work', async () => {
    const state = await seededManager()
    // Fits V8 as UTF-16 (179e6 units), but its UTF-8 (537e6 bytes) does not.
    await expectRejectionLeavesStoreUnchanged(state, () => state.set('g', 'k', '€'.repeat(179e6)), 'VALUE_TOO_LARGE', [['g', 'k']])
    expect(await state.set('g', 'k', 'small')).toEqual({ new_value: 'small', old_value: { previous: true } })
    expect(await state.getGroup('g')).toEqual(['small'])
  })
})

describe('user code that throws while arguments are checked', () => {
  const boom = new Error('boom')
  const thrower = () => {
    throw boom
  }
  const revoked = () => {
    const { proxy, revoke } = Proxy.revocable({}, {})
    revoke()
    return proxy
  }
  const revokedArray = () => {
    const { proxy, revoke } = Proxy.revocable([], {})
    revoke()
    return proxy
  }

  const values: Array<[string, () => unknown, boolean]> = [
    ['a getter at the top', () => ({ get a() { return thrower() } }), true],
    ['a getter deep inside', () => ({ a: [1, { get b() { return thrower() } }] }), true],
    ['a getter on an object that also has toJSON elsewhere', () => ({ at: new Date(0), get b() { return thrower() } }), true],
    ['a throwing toJSON', () => ({ toJSON: thrower }), true],
    ['a Proxy whose ownKeys trap throws', () => new Proxy({}, { ownKeys: thrower }), true],
    ['a Proxy whose get trap throws', () => new Proxy({ a: 1 }, { get: thrower }), true],
    ['a Proxy whose getPrototypeOf trap throws', () => new Proxy({}, { getPrototypeOf: thrower }), true],
    ['a revoked Proxy', revoked, false],
    ['a revoked Proxy of an array', revokedArray, false],
    ['a revoked Proxy nested inside', () => ({ a: revoked() }), false],
  ]

  it.each(values)('set of a value with %s rejects with INVALID_VALUE, the error as cause, and changes nothing', async (_name, make, ours) => {
    const state = await seededManager()
    const err = await expectRejectionLeavesStoreUnchanged(state, () => state.set('g', 'k', make()), 'INVALID_VALUE', [['g', 'k']])
    expect(err).toBeInstanceOf(StateError)
    if (ours) expect(err.cause).toBe(boom)
    else expect(err.cause).toBeInstanceOf(TypeError)
  })

  const options: Array<[string, () => unknown, boolean]> = [
    ['a getter of ttl that throws', () => ({ get ttl() { return thrower() } }), true],
    ['a Proxy whose get trap throws', () => new Proxy({}, { get: thrower }), true],
    ['a revoked Proxy', revoked, false],
  ]

  it.each(options)('set with opts holding %s rejects with INVALID_ARGUMENT, the error as cause', async (_name, make, ours) => {
    const state = await seededManager()
    const err = await expectRejectionLeavesStoreUnchanged(state, () => state.set('g', 'k', 1, make() as any), 'INVALID_ARGUMENT', [['g', 'k']])
    expect(err).toBeInstanceOf(TypeError)
    if (ours) expect(err.cause).toBe(boom)
    else expect(err.cause).toBeInstanceOf(TypeError)
  })

  const ops: Array<[string, () => unknown, boolean]> = [
    ['a getter of value that throws', () => ({ type: 'set', path: 'a', get value() { return thrower() } }), true],
    ['a getter of by that throws', () => ({ type: 'increment', path: 'n', get by() { return thrower() } }), true],
    ['a getter of path that throws', () => ({ type: 'set', get path() { return thrower() }, value: 1 }), true],
    ['a value with a throwing getter inside', () => ({ type: 'set', path: 'a', value: { get b() { return thrower() } } }), true],
    ['a Proxy whose get trap throws', () => new Proxy({}, { get: thrower }), true],
    ['a Proxy whose ownKeys trap throws', () => new Proxy({ type: 'set', path: 'a', value: 1 }, { ownKeys: thrower }), true],
    ['a revoked Proxy', revoked, false],
    ['a revoked Proxy as its value', () => ({ type: 'set', path: 'a', value: revoked() }), false],
  ]

  it.each(ops)('update with an op holding %s rejects with INVALID_OP at its opIndex, the error as cause', async (_name, make, ours) => {
    const state = await seededManager()
    const list = [{ type: 'set', path: 'first', value: 1 }, make()]
    const err = await expectRejectionLeavesStoreUnchanged(state, () => state.update('g', 'k', list as any), 'INVALID_OP', [['g', 'k']])
    expect(err).toBeInstanceOf(StateError)
    expect(err.opIndex).toBe(1)
    if (ours) expect(err.cause).toBe(boom)
    else expect(err.cause).toBeInstanceOf(TypeError)
  })

  const opLists: Array<[string, () => unknown, boolean]> = [
    ['a revoked Proxy', revokedArray, false],
    ['a Proxy of an array whose get trap throws', () => new Proxy([{ type: 'set', path: 'a', value: 1 }], { get: thrower }), true],
  ]

  it.each(opLists)('update with ops that are %s rejects with INVALID_ARGUMENT, the error as cause', async (_name, make, ours) => {
    const state = await seededManager()
    const err = await expectRejectionLeavesStoreUnchanged(state, () => state.update('g', 'k', make() as any), 'INVALID_ARGUMENT', [['g', 'k']])
    expect(err).toBeInstanceOf(TypeError)
    expect(err.opIndex).toBeUndefined()
    if (ours) expect(err.cause).toBe(boom)
    else expect(err.cause).toBeInstanceOf(TypeError)
  })

  const filters: Array<[string, () => unknown, boolean]> = [
    ['a getter of group that throws', () => ({ get group() { return thrower() } }), true],
    ['a getter of key that throws', () => ({ get key() { return thrower() } }), true],
    ['a getter of condition that throws', () => ({ get condition() { return thrower() } }), true],
    ['a Proxy whose get trap throws', () => new Proxy({}, { get: thrower }), true],
    ['a revoked Proxy', revoked, false],
  ]

  it.each(filters)('onChange and watch with a filter of %s throw a TypeError of code INVALID_ARGUMENT, the error as cause', async (_name, make, ours) => {
    const state = await seededManager()
    for (const subscribe of [(filter: any) => state.onChange(() => {}, filter), (filter: any) => state.watch(filter)]) {
      let thrown: any
      try {
        subscribe(make())
      } catch (err) {
        thrown = err
      }
      expect(thrown).toBeInstanceOf(TypeError)
      expect(thrown.code).toBe('INVALID_ARGUMENT')
      if (ours) expect(thrown.cause).toBe(boom)
      else expect(thrown.cause).toBeInstanceOf(TypeError)
    }
    // Nothing was subscribed: a write is seen by no listener, and the store is as it was.
    expect(await state.get('g', 'k')).toEqual({ previous: true })
  })
})

describe('filters no valid name can match', () => {
  const tooLong: Array<[string, string]> = [
    ['1025 ASCII bytes', 'x'.repeat(1025)],
    ['1025 bytes in two-byte characters', 'é'.repeat(512) + 'x'],
    ['1028 bytes in 514 UTF-16 units', '😀'.repeat(257)],
  ]

  it.each(tooLong)('onChange and watch reject a group or key of %s like the name itself', (_name, name) => {
    const state = freshManager()
    for (const field of ['group', 'key']) {
      for (const subscribe of [(filter: any) => state.onChange(() => {}, filter), (filter: any) => state.watch(filter)]) {
        let thrown: any
        try {
          subscribe({ [field]: name })
        } catch (err) {
          thrown = err
        }
        expect(thrown).toBeInstanceOf(TypeError)
        expect(thrown.code).toBe('INVALID_ARGUMENT')
        expect(thrown.message).toContain(`filter.${field}`)
        expect(thrown.message).toContain('at most 1024 bytes')
      }
    }
  })

  it('accepts a filter group and key of exactly 1024 bytes', async () => {
    const state = freshManager()
    const group = 'é'.repeat(512)
    const key = '😀'.repeat(256)
    const seen: unknown[] = []
    const off = state.onChange((event) => seen.push(event.new_value), { group, key })
    await state.set(group, key, 1)
    await new Promise((resolve) => setTimeout(resolve, 20))
    off()
    expect(seen).toEqual([1])
  })
})

describe('subscriptions made and ended many times', () => {
  // 100,000 pairs leaked about 250 MB before; a cycle through the native callback kept every
  // ended subscription (and its manager) reachable. A child process can force collections.
  const churn = (mode: string) => {
    const script = join(__dirname, 'helpers', 'subscription-churn.cjs')
    const output = execFileSync(process.execPath, ['--expose-gc', script, mode, '100000', adapterUnderTest, tempDirectory()], {
      encoding: 'utf8',
      timeout: 120_000,
    })
    return JSON.parse(output) as { heapGrowth: number; rssGrowth: number }
  }

  it.each(['onChange', 'watch'])('%s followed by its unsubscribe 100,000 times leaves no memory behind', (mode) => {
    const { heapGrowth, rssGrowth } = churn(mode)
    expect(heapGrowth).toBeLessThan(20 * 1024 * 1024)
    expect(rssGrowth).toBeLessThan(40 * 1024 * 1024)
  })
})
