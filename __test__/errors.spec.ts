// How calls fail: bad group and key names, values that are not JSON, maxValueBytes, the
// shape of every rejection, and proof that no rejected call changes the store.
import { createRequire } from 'node:module'
import { afterEach, describe, expect, it } from 'vitest'
import { StateError, StateManager } from '../index.js'
import { expectRejection, expectRejectionLeavesStoreUnchanged, rejectionOf } from './helpers/assertions'
import { closeManagers, freshManager } from './helpers/managers'

afterEach(closeManagers)

/** A manager holding a little of everything, so that "unchanged" has something to compare. */
async function seededManager(options?: ConstructorParameters<typeof StateManager>[0]): Promise<StateManager> {
  const state = freshManager(options)
  await state.set('users', 'u1', { name: 'Ada', visits: 1 })
  await state.set('users', 'u2', { name: 'Alan', visits: 0 })
  await state.set('orders', 'o1', { status: 'pending', items: ['a'] })
  await state.set('g', 'k', 'existing')
  return state
}

const badNames: Array<[string, unknown]> = [
  ['an empty string', ''],
  ['a number', 42],
  ['undefined', undefined],
  ['null', null],
  ['an object', { name: 'g' }],
  ['an array', ['g']],
  ['a string of 1025 ASCII bytes', 'x'.repeat(1025)],
  ['a string of 1025 bytes in two-byte characters', 'é'.repeat(512) + 'x'],
  ['a string of 1028 bytes in 514 UTF-16 units', '😀'.repeat(257)],
]

type Call = (state: StateManager, name: any) => Promise<unknown>

const groupCalls: Array<[string, Call]> = [
  ['set', (state, group) => state.set(group, 'k', 1)],
  ['get', (state, group) => state.get(group, 'k')],
  ['getGroup', (state, group) => state.getGroup(group)],
  ['list', (state, group) => state.list(group)],
  ['entries', (state, group) => state.entries(group)],
  ['keys', (state, group) => state.keys(group)],
  ['delete', (state, group) => state.delete(group, 'k')],
  ['clear', (state, group) => state.clear(group)],
  ['update', (state, group) => state.update(group, 'k', [{ type: 'set', path: 'a', value: 1 }])],
]

const keyCalls: Array<[string, Call]> = [
  ['set', (state, key) => state.set('g', key, 1)],
  ['get', (state, key) => state.get('g', key)],
  ['delete', (state, key) => state.delete('g', key)],
  ['update', (state, key) => state.update('g', key, [{ type: 'set', path: 'a', value: 1 }])],
]

describe.each(groupCalls)('%s with a bad group', (_method, call) => {
  it.each(badNames)('rejects %s with a TypeError of code INVALID_ARGUMENT and changes nothing', async (_name, group) => {
    const state = await seededManager()
    const err = await expectRejectionLeavesStoreUnchanged(state, () => call(state, group), 'INVALID_ARGUMENT')
    expect(err).toBeInstanceOf(TypeError)
  })
})

describe.each(keyCalls)('%s with a bad key', (_method, call) => {
  it.each(badNames)('rejects %s with a TypeError of code INVALID_ARGUMENT and changes nothing', async (_name, key) => {
    const state = await seededManager()
    const err = await expectRejectionLeavesStoreUnchanged(state, () => call(state, key), 'INVALID_ARGUMENT', [['g', 'k']])
    expect(err).toBeInstanceOf(TypeError)
  })
})

describe('names at the size limit', () => {
  it('accepts a group and a key of exactly 1024 bytes, in multi-byte or ASCII characters', async () => {
    const state = freshManager()
    const group = 'é'.repeat(512)
    const key = 'k'.repeat(1024)
    const emojiKey = '😀'.repeat(256)
    expect(Buffer.byteLength(group)).toBe(1024)
    expect(Buffer.byteLength(emojiKey)).toBe(1024)
    expect(await state.set(group, key, 1)).toEqual({ new_value: 1, old_value: null })
    await state.update(group, emojiKey, [{ type: 'increment', path: 'n', by: 1 }])
    expect(await state.get(group, key)).toBe(1)
    expect(await state.entries(group)).toEqual([
      { key, value: 1 },
      { key: emojiKey, value: { n: 1 } },
    ])
    expect(await state.listGroups()).toEqual([group])
    expect(await state.delete(group, emojiKey)).toEqual({ n: 1 })
    await state.clear(group)
    expect(await state.listGroups()).toEqual([])
  })

  it('keeps every byte of names from 115 to 135 bytes long, whatever character ends them', async () => {
    // Names of up to about 124 bytes are read onto the stack, longer ones onto the heap; a
    // multi-byte character may straddle that limit.
    const state = freshManager()
    const names: string[] = []
    for (let bytes = 115; bytes <= 135; bytes++) {
      for (const last of ['x', 'é', '€', '😀']) {
        const lastBytes = Buffer.byteLength(last)
        if (bytes < lastBytes) continue
        names.push('n'.repeat(bytes - lastBytes) + last)
      }
    }
    for (const name of names) {
      await state.set(name, name, name)
      await state.update('g', name, [{ type: 'set', path: 'name', value: name }])
    }
    for (const name of names) {
      expect(await state.get(name, name)).toBe(name)
    }
    expect(await state.keys('g')).toEqual(names)
    expect(await state.listGroups()).toEqual([...names, 'g'].sort())
    for (const name of names) expect(await state.delete('g', name)).toEqual({ name })
  })
})

describe('values that are not JSON', () => {
  const cyclic: any = { name: 'loop' }
  cyclic.self = cyclic
  const cyclicArray: any[] = [1]
  cyclicArray.push([cyclicArray])
  const deepCycle: any = { a: { b: { c: {} } } }
  deepCycle.a.b.c.back = deepCycle.a

  const invalidValues: Array<[string, unknown]> = [
    ['undefined', undefined],
    ['a function', () => 1],
    ['a symbol', Symbol('s')],
    ['NaN', NaN],
    ['Infinity', Infinity],
    ['-Infinity', -Infinity],
    ['a BigInt', 10n],
    ['a BigInt nested in an object', { a: { b: 1n } }],
    ['a BigInt nested in an array', [1, [2, 3n]]],
    ['a BigInt returned by toJSON', { toJSON: () => 5n }],
    ['an object with a cycle', cyclic],
    ['an array with a cycle', cyclicArray],
    ['a cycle deep inside', deepCycle],
  ]

  it.each(invalidValues)('set of %s rejects with INVALID_VALUE and stores nothing', async (_name, value) => {
    const state = await seededManager()
    await expectRejectionLeavesStoreUnchanged(state, () => state.set('g', 'new', value), 'INVALID_VALUE', [['g', 'new']])
    await expectRejectionLeavesStoreUnchanged(state, () => state.set('fresh-group', 'k', value), 'INVALID_VALUE', [['fresh-group', 'k']])
    expect(await state.listGroups()).toEqual(['g', 'orders', 'users'])
  })

  it.each(invalidValues)('set of %s over an existing key keeps the old value', async (_name, value) => {
    const state = await seededManager()
    await expectRejectionLeavesStoreUnchanged(state, () => state.set('g', 'k', value), 'INVALID_VALUE', [['g', 'k']])
    expect(await state.get('g', 'k')).toBe('existing')
  })

  it('names the group and key in the message of INVALID_VALUE', async () => {
    const state = await seededManager()
    const err = await expectRejection(() => state.set('invoices', 'inv-77', { n: 1n }), 'INVALID_VALUE')
    expect(err.message).toContain('invoices')
    expect(err.message).toContain('inv-77')
  })
})

describe('maxValueBytes', () => {
  it('accepts a value of exactly the limit and rejects one byte more with VALUE_TOO_LARGE', async () => {
    const state = await seededManager({ maxValueBytes: 100 })
    expect(JSON.stringify('x'.repeat(98)).length).toBe(100)
    await state.set('g', 'fits', 'x'.repeat(98))
    expect(await state.get('g', 'fits')).toBe('x'.repeat(98))
    await expectRejectionLeavesStoreUnchanged(state, () => state.set('g', 'big', 'x'.repeat(99)), 'VALUE_TOO_LARGE', [['g', 'big']])
  })

  it('counts UTF-8 bytes of the serialized JSON, not characters', async () => {
    const state = await seededManager({ maxValueBytes: 100 })
    await state.set('g', 'fits', 'é'.repeat(49))
    const tooLarge = 'é'.repeat(50)
    expect(JSON.stringify(tooLarge).length).toBeLessThan(100)
    await expectRejectionLeavesStoreUnchanged(state, () => state.set('g', 'big', tooLarge), 'VALUE_TOO_LARGE', [['g', 'big']])
  })

  it('keeps the old value when a set over an existing key is too large', async () => {
    const state = await seededManager({ maxValueBytes: 50 })
    await expectRejectionLeavesStoreUnchanged(state, () => state.set('g', 'k', { text: 'y'.repeat(60) }), 'VALUE_TOO_LARGE', [['g', 'k']])
    expect(await state.get('g', 'k')).toBe('existing')
  })

  it('rejects an update whose result is too large and keeps the old value', async () => {
    const state = await seededManager({ maxValueBytes: 100 })
    await state.set('g', 'doc', { s: 'x'.repeat(50) })
    await expectRejectionLeavesStoreUnchanged(
      state,
      () => state.update('g', 'doc', [{ type: 'append', path: 's', value: 'x'.repeat(60) }]),
      'VALUE_TOO_LARGE',
      [['g', 'doc']],
    )
    expect(await state.get('g', 'doc')).toEqual({ s: 'x'.repeat(50) })
    await state.update('g', 'doc', [{ type: 'append', path: 's', value: 'x'.repeat(10) }])
    expect(await state.get('g', 'doc')).toEqual({ s: 'x'.repeat(60) })
  })

  it('creates no key when an update of a missing key produces a value that is too large', async () => {
    const state = await seededManager({ maxValueBytes: 100 })
    await expectRejectionLeavesStoreUnchanged(
      state,
      () => state.update('new-group', 'doc', [{ type: 'set', path: 'big', value: 'z'.repeat(200) }]),
      'VALUE_TOO_LARGE',
      [['new-group', 'doc']],
    )
    expect(await state.listGroups()).toEqual(['g', 'orders', 'users'])
  })

  it('does not limit a manager created without it', async () => {
    const state = freshManager()
    const big = 'b'.repeat(1_000_000)
    await state.set('g', 'big', big)
    expect(await state.get('g', 'big')).toBe(big)
  })
})

describe('rejections', () => {
  it('are Errors with a string code for every kind of failure', async () => {
    const state = await seededManager({ maxValueBytes: 1000 })
    const failures: Array<[string, () => Promise<unknown>]> = [
      ['INVALID_ARGUMENT', () => state.get('', 'k')],
      ['INVALID_VALUE', () => state.set('g', 'k', NaN)],
      ['INVALID_OP', () => state.update('g', 'k', [{ type: 'nope' }] as any)],
      ['VALUE_TOO_LARGE', () => state.set('g', 'k', 'v'.repeat(2000))],
      ['test.failed', () => state.update('orders', 'o1', [{ type: 'test', path: 'status', value: 'paid' }])],
      ['increment.not_number', () => state.update('users', 'u1', [{ type: 'increment', path: 'name', by: 1 }])],
    ]
    for (const [code, call] of failures) {
      const err = await rejectionOf(call)
      expect(err, code).toBeInstanceOf(Error)
      expect(typeof err.code, code).toBe('string')
      expect(err.code).toBe(code)
      expect(typeof err.message, code).toBe('string')
      expect(err.message.length, code).toBeGreaterThan(0)
    }
  })

  it('from ops are StateError instances carrying the index of the failing op', async () => {
    const state = await seededManager()
    const cases: Array<[unknown[], string, number]> = [
      [[{ type: 'set', path: 'a', value: 1 }, { type: 'test', path: 'status', value: 'paid' }], 'test.failed', 1],
      [[{ type: 'increment', path: 'status', by: 1 }], 'increment.not_number', 0],
      [[{ type: 'set', path: 'a', value: 1 }, { type: 'set', path: 'b', value: 1 }, { type: 'decrement', path: 'items', by: 1 }], 'decrement.not_number', 2],
      [[{ type: 'merge', path: 'status', value: { a: 1 } }], 'merge.target_not_object', 0],
      [[{ type: 'remove', path: 'x' }, { type: 'append', path: 'status', value: 1 }], 'append.type_mismatch', 1],
      [[{ type: 'set', path: 'a', value: 1 }, { type: 'set', path: '__proto__.a', value: 1 }], 'path.proto_polluted', 1],
      [[{ type: 'set', path: 'a', value: 1 }, { type: 'set', path: 'b', value: 1 }, { type: 'set', path: 5, value: 1 }], 'INVALID_OP', 2],
    ]
    for (const [ops, code, opIndex] of cases) {
      const err = await expectRejectionLeavesStoreUnchanged(state, () => state.update('orders', 'o1', ops as any), code, [['orders', 'o1']])
      expect(err, code).toBeInstanceOf(StateError)
      expect(err, code).toBeInstanceOf(Error)
      expect(err.opIndex, code).toBe(opIndex)
    }
  })

  it('of an update name the group, the key and the op in the message', async () => {
    const state = await seededManager()
    await state.set('billing-group', 'invoice-42', { total: 'not a number' })
    const err = await expectRejection(
      () => state.update('billing-group', 'invoice-42', [{ type: 'increment', path: 'total', by: 1 }]),
      'increment.not_number',
    )
    expect(err.message).toContain('billing-group')
    expect(err.message).toContain('invoice-42')
    expect(err.message).toContain('increment')
  })

  it('leave the manager fully usable afterwards', async () => {
    const state = await seededManager()
    await expectRejection(() => state.set('', 'k', 1), 'INVALID_ARGUMENT')
    await expectRejection(() => state.set('g', 'k', 1n), 'INVALID_VALUE')
    await expectRejection(() => state.update('users', 'u1', [{ type: 'test', path: 'name', value: 'Bob' }]), 'test.failed')
    expect(await state.update('users', 'u1', [{ type: 'increment', path: 'visits', by: 1 }])).toEqual({
      new_value: { name: 'Ada', visits: 2 },
      old_value: { name: 'Ada', visits: 1 },
    })
    expect(await state.set('g', 'k', 'after')).toEqual({ new_value: 'after', old_value: 'existing' })
  })
})

describe('the per-item calls of the binding (plain N-API callbacks, src/fast.rs)', () => {
  // index.js never passes these bad arguments; the callbacks must still refuse them with an
  // error, as the generated ones did, and never read past what they were given.
  const native = createRequire(import.meta.url)('../binding.js')
  const { fromNative } = createRequire(import.meta.url)('../lib/errors.js')
  const codeOf = (call: () => unknown): string | undefined => {
    try {
      call()
    } catch (err) {
      return fromNative(err).code ?? 'uncoded'
    }
    return undefined
  }

  it('refuse what is not a store handle, names that are not strings, and missing arguments', () => {
    const handle = native.openMemory(1024, -1)
    try {
      expect(native.set(handle, 'g', 'k', '{"a":1}', -1, 0)).toBe(null)
      expect(native.get(handle, 'g', 'k', 0)).toBe('{"a":1}')
      for (const call of ['set', 'get', 'update', 'delete']) {
        expect(codeOf(() => native[call]({}, 'g', 'k', '[]', -1, 0)), call).toBe('INVALID_ARGUMENT')
        expect(codeOf(() => native[call](handle, 42, 'k', '[]', -1, 0)), call).toBe('INVALID_ARGUMENT')
        expect(codeOf(() => native[call](handle, 'g')), call).toBe('INVALID_ARGUMENT')
        expect(codeOf(() => native[call]()), call).toBe('INVALID_ARGUMENT')
      }
      expect(codeOf(() => native.set(handle, 'g', 'k', 7, -1, 0))).toBe('INVALID_ARGUMENT')
      expect(codeOf(() => native.update(handle, 'g', 'k', null, 0))).toBe('INVALID_ARGUMENT')
      expect(codeOf(() => native.get(handle, 'g', 'k', 'not a number'))).toBeDefined()
      for (const call of ['redisSetStart', 'redisGetStart', 'redisUpdateStart', 'redisDeleteStart']) {
        expect(codeOf(() => native[call](1, {}, 1, 'g', 'k', '[]', -1)), call).toBeDefined()
      }
      // Nothing above reached the store.
      expect(native.get(handle, 'g', 'k', 0)).toBe('{"a":1}')
    } finally {
      native.close(handle)
    }
    expect(codeOf(() => native.get(handle, 'g', 'k', 0))).toBe('CLOSED')
  })
})
