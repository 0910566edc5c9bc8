// `update(group, key, ops)`: every op and JSON-Patch form, every path form, the arithmetic
// guarantees, all-or-nothing application, the op error codes with their opIndex, and the JSON
// text an op list crosses to the engine as.
import { afterEach, describe, expect, it } from 'vitest'
import { StateError, StateManager } from '../index.js'
import { expectRejection, expectRejectionLeavesStoreUnchanged } from './helpers/assertions'
import { closeManagers, freshManager } from './helpers/managers'
import { simpleOpsText } from '../lib/ops-text.js'

afterEach(closeManagers)

/**
 * Sets `g/k` to `start` (unless it is `undefined`, leaving the key absent), applies `ops`, and
 * checks that the stored value is the resolved `new_value`. Resolves to that value.
 */
async function valueAfter(start: unknown, ops: unknown[]): Promise<any> {
  const state = freshManager()
  if (start !== undefined) await state.set('g', 'k', start)
  const result = await state.update('g', 'k', ops as any)
  expect(await state.get('g', 'k')).toStrictEqual(result.new_value)
  return result.new_value
}

/**
 * Expects `ops` applied to `start` (absent when `undefined`) to reject with `code` at `opIndex`
 * as a StateError, leaving the store unchanged. Resolves to the rejection.
 */
async function opFailure(start: unknown, ops: unknown[], code: string | RegExp, opIndex: number) {
  const state = freshManager()
  await state.set('other', 'k', { untouched: true })
  if (start !== undefined) await state.set('g', 'k', start)
  const err = await expectRejectionLeavesStoreUnchanged(state, () => state.update('g', 'k', ops as any), code, [['g', 'k']])
  expect(err).toBeInstanceOf(StateError)
  expect(err.opIndex).toBe(opIndex)
  if (start === undefined) {
    expect(await state.get('g', 'k')).toBeNull()
    expect(await state.listGroups()).toEqual(['other'])
  }
  return err
}

const okOp = { type: 'set', path: 'touched', value: true }

describe('the set op', () => {
  it('sets a field and keeps the other fields', async () => {
    expect(await valueAfter({ a: 1, b: { c: 2, d: 3 }, e: [1] }, [{ type: 'set', path: 'b.c', value: 5 }])).toStrictEqual({
      a: 1,
      b: { c: 5, d: 3 },
      e: [1],
    })
  })

  it('creates missing intermediate objects', async () => {
    expect(await valueAfter({ a: 1 }, [{ type: 'set', path: 'x.y.z', value: 'deep' }])).toStrictEqual({
      a: 1,
      x: { y: { z: 'deep' } },
    })
  })

  it('replaces the whole value at the root path', async () => {
    expect(await valueAfter({ a: 1 }, [{ type: 'set', path: '', value: [1, 2] }])).toStrictEqual([1, 2])
  })

  it('stores falsy values and structured values as given', async () => {
    expect(
      await valueAfter({}, [
        { type: 'set', path: 'zero', value: 0 },
        { type: 'set', path: 'no', value: false },
        { type: 'set', path: 'empty', value: '' },
        { type: 'set', path: 'nothing', value: null },
        { type: 'set', path: 'list', value: [{ a: [] }] },
      ]),
    ).toStrictEqual({ zero: 0, no: false, empty: '', nothing: null, list: [{ a: [] }] })
  })
})

describe('the merge op', () => {
  it('merges shallowly into the root when the path is omitted', async () => {
    expect(await valueAfter({ a: 1, b: { x: 1 } }, [{ type: 'merge', value: { b: { y: 2 }, c: 3 } }])).toStrictEqual({
      a: 1,
      b: { y: 2 },
      c: 3,
    })
  })

  it("merges into the root when the path is ''", async () => {
    expect(await valueAfter({ a: 1 }, [{ type: 'merge', path: '', value: { b: 2 } }])).toStrictEqual({ a: 1, b: 2 })
  })

  it('merges into a nested object and keeps its other fields', async () => {
    expect(
      await valueAfter({ profile: { name: 'Ada', age: 36 }, id: 1 }, [{ type: 'merge', path: 'profile', value: { age: 37, city: 'London' } }]),
    ).toStrictEqual({ profile: { name: 'Ada', age: 37, city: 'London' }, id: 1 })
  })

  it('creates a missing target object', async () => {
    expect(await valueAfter({ id: 1 }, [{ type: 'merge', path: 'a.b', value: { c: 1 } }])).toStrictEqual({ id: 1, a: { b: { c: 1 } } })
  })
})

describe('the increment and decrement ops', () => {
  it('add to and subtract from an existing number', async () => {
    expect(
      await valueAfter({ n: 5, m: 10 }, [
        { type: 'increment', path: 'n', by: 2 },
        { type: 'decrement', path: 'm', by: 3 },
      ]),
    ).toStrictEqual({ n: 7, m: 7 })
  })

  it('accept negative amounts', async () => {
    expect(
      await valueAfter({ n: 5, m: 5 }, [
        { type: 'increment', path: 'n', by: -7 },
        { type: 'decrement', path: 'm', by: -1 },
      ]),
    ).toStrictEqual({ n: -2, m: 6 })
  })

  it('start from 0 on a missing field and create missing intermediates', async () => {
    expect(
      await valueAfter({}, [
        { type: 'increment', path: 'stats.views', by: 3 },
        { type: 'decrement', path: 'stats.stock', by: 2 },
      ]),
    ).toStrictEqual({ stats: { views: 3, stock: -2 } })
  })

  it('keep integers exact up to the edge of the safe range', async () => {
    expect(
      await valueAfter({ up: 2 ** 53 - 2, down: -(2 ** 53 - 2), big: 9007199254740000 }, [
        { type: 'increment', path: 'up', by: 1 },
        { type: 'decrement', path: 'down', by: 1 },
        { type: 'increment', path: 'big', by: 991 },
      ]),
    ).toStrictEqual({ up: Number.MAX_SAFE_INTEGER, down: Number.MIN_SAFE_INTEGER, big: 9007199254740991 })
  })

  it('keep floats as floats with the same result as JavaScript arithmetic', async () => {
    expect(
      await valueAfter({ x: 0.1, y: 0.3, z: 1 }, [
        { type: 'increment', path: 'x', by: 0.2 },
        { type: 'decrement', path: 'y', by: 0.1 },
        { type: 'increment', path: 'z', by: 0.5 },
      ]),
    ).toStrictEqual({ x: 0.1 + 0.2, y: 0.3 - 0.1, z: 1.5 })
  })

  it('apply in order when several ops touch the same field', async () => {
    expect(
      await valueAfter({ n: 1 }, [
        { type: 'increment', path: 'n', by: 10 },
        { type: 'decrement', path: 'n', by: 4 },
        { type: 'increment', path: 'n', by: 0.5 },
      ]),
    ).toStrictEqual({ n: 7.5 })
  })
})

describe('the append op', () => {
  it('pushes a value onto an array', async () => {
    expect(
      await valueAfter({ items: [1] }, [
        { type: 'append', path: 'items', value: 2 },
        { type: 'append', path: 'items', value: { id: 3 } },
      ]),
    ).toStrictEqual({ items: [1, 2, { id: 3 }] })
  })

  it('concatenates a string onto a string', async () => {
    expect(await valueAfter({ log: 'ab' }, [{ type: 'append', path: 'log', value: 'cd' }])).toStrictEqual({ log: 'abcd' })
  })

  it('appends to the root value when the path is omitted', async () => {
    expect(await valueAfter([1, 2], [{ type: 'append', value: 3 }])).toStrictEqual([1, 2, 3])
    expect(await valueAfter('start', [{ type: 'append', value: '-end' }])).toBe('start-end')
  })
})

describe('the remove op', () => {
  it('removes a field and keeps the others', async () => {
    expect(await valueAfter({ a: 1, b: { c: 2, d: 3 } }, [{ type: 'remove', path: 'b.c' }])).toStrictEqual({ a: 1, b: { d: 3 } })
  })

  it('is a no-op for a missing field or a missing parent', async () => {
    expect(
      await valueAfter({ a: 1 }, [
        { type: 'remove', path: 'missing' },
        { type: 'remove', path: 'x.y.z' },
      ]),
    ).toStrictEqual({ a: 1 })
  })
})

describe('the test op', () => {
  it('lets the update through when the value at the path is deep-equal', async () => {
    expect(
      await valueAfter({ status: 'pending', meta: { tags: ['a', { b: 1 }], n: null } }, [
        { type: 'test', path: 'status', value: 'pending' },
        { type: 'test', path: 'meta', value: { n: null, tags: ['a', { b: 1 }] } },
        { type: 'set', path: 'status', value: 'paid' },
      ]),
    ).toStrictEqual({ status: 'paid', meta: { tags: ['a', { b: 1 }], n: null } })
  })

  it('works as compare-and-set: pending becomes paid once, the second attempt fails with test.failed', async () => {
    const state = freshManager()
    await state.set('orders', 'o1', { status: 'pending', total: 30 })
    const pay = [
      { type: 'test', path: 'status', value: 'pending' },
      { type: 'set', path: 'status', value: 'paid' },
    ] as const
    expect(await state.update('orders', 'o1', pay as any)).toEqual({
      new_value: { status: 'paid', total: 30 },
      old_value: { status: 'pending', total: 30 },
    })
    const err = await expectRejectionLeavesStoreUnchanged(state, () => state.update('orders', 'o1', pay as any), 'test.failed')
    expect(err).toBeInstanceOf(StateError)
    expect(err.opIndex).toBe(0)
    expect(await state.get('orders', 'o1')).toEqual({ status: 'paid', total: 30 })
  })

  it('compares numbers by value whatever arithmetic produced them', async () => {
    expect(
      await valueAfter({ n: 1.5, m: 2 }, [
        { type: 'increment', path: 'n', by: 1.5 },
        { type: 'test', path: 'n', value: 3 },
        { type: 'increment', path: 'm', by: 1 },
        { type: 'test', path: 'm', value: 3.0 },
      ]),
    ).toStrictEqual({ n: 3, m: 3 })
  })

  it('fails when the value differs', async () => {
    await opFailure({ status: 'paid' }, [okOp, { type: 'test', path: 'status', value: 'pending' }], 'test.failed', 1)
  })

  it('fails for a missing field, even against null', async () => {
    await opFailure({ a: 1 }, [{ type: 'test', path: 'missing', value: null }], 'test.failed', 0)
  })

  it('fails when arrays differ in order or objects in content', async () => {
    await opFailure({ list: [1, 2] }, [{ type: 'test', path: 'list', value: [2, 1] }], 'test.failed', 0)
    await opFailure({ o: { a: 1, b: 2 } }, [{ type: 'test', path: 'o', value: { a: 1 } }], 'test.failed', 0)
    await opFailure({ v: 0 }, [{ type: 'test', path: 'v', value: false }], 'test.failed', 0)
    await opFailure({ v: '1' }, [{ type: 'test', path: 'v', value: 1 }], 'test.failed', 0)
  })
})

describe('JSON-Patch style ops', () => {
  it('add and replace set values at a JSON Pointer', async () => {
    expect(
      await valueAfter({ a: { keep: 1, b: 'old' } }, [
        { op: 'add', path: '/a/c', value: { d: true } },
        { op: 'replace', path: '/a/b', value: 'new' },
      ]),
    ).toStrictEqual({ a: { keep: 1, b: 'new', c: { d: true } } })
  })

  it('remove deletes the field at a JSON Pointer', async () => {
    expect(await valueAfter({ a: { b: 1, c: 2 } }, [{ op: 'remove', path: '/a/b' }])).toStrictEqual({ a: { c: 2 } })
  })

  it('increment adds its value, starting from 0 on a missing field', async () => {
    expect(
      await valueAfter({ n: 40 }, [
        { op: 'increment', path: '/n', value: 2 },
        { op: 'increment', path: '/m', value: -3 },
      ]),
    ).toStrictEqual({ n: 42, m: -3 })
  })

  it('test guards the ops after it', async () => {
    expect(
      await valueAfter({ status: 'pending' }, [
        { op: 'test', path: '/status', value: 'pending' },
        { op: 'replace', path: '/status', value: 'paid' },
      ]),
    ).toStrictEqual({ status: 'paid' })
    await opFailure({ status: 'paid' }, [{ op: 'test', path: '/status', value: 'pending' }, { op: 'replace', path: '/status', value: 'x' }], 'test.failed', 0)
  })

  it('mix with type ops in one list', async () => {
    expect(
      await valueAfter({}, [
        { op: 'add', path: '/count', value: 1 },
        { type: 'increment', path: 'count', by: 1 },
        { op: 'increment', path: '/count', value: 1 },
      ]),
    ).toStrictEqual({ count: 3 })
  })
})

describe('paths', () => {
  it('walk nested objects with dots', async () => {
    expect(await valueAfter({}, [{ type: 'set', path: 'a.b.c', value: 1 }])).toStrictEqual({ a: { b: { c: 1 } } })
  })

  it('take an array as literal segments, dots included', async () => {
    expect(
      await valueAfter({}, [
        { type: 'set', path: ['a.b', 'c'], value: 1 },
        { type: 'increment', path: ['x.y'], by: 2 },
      ]),
    ).toStrictEqual({ 'a.b': { c: 1 }, 'x.y': 2 })
  })

  it('read a string that begins with / as a JSON Pointer with ~1 and ~0 escapes', async () => {
    expect(
      await valueAfter({}, [
        { type: 'set', path: '/a~1b/c~0d', value: 1 },
        { type: 'set', path: '/x.y', value: 2 },
        { type: 'set', path: '/~01', value: 3 },
      ]),
    ).toStrictEqual({ 'a/b': { 'c~d': 1 }, 'x.y': 2, '~1': 3 })
  })

  it('read the pointer / as the member with the empty name', async () => {
    expect(await valueAfter({ a: 1 }, [{ type: 'set', path: '/', value: 'empty name' }])).toStrictEqual({ a: 1, '': 'empty name' })
  })

  it('keep slashes and colons inside dotted segments', async () => {
    expect(await valueAfter({}, [{ type: 'set', path: 'a/b.c:d', value: 1 }])).toStrictEqual({ 'a/b': { 'c:d': 1 } })
  })

  it("address the root value with ''", async () => {
    expect(await valueAfter(5, [{ type: 'increment', path: '', by: 1 }])).toBe(6)
    expect(await valueAfter({ a: 1 }, [{ type: 'test', path: '', value: { a: 1 } }, { type: 'set', path: '', value: 'replaced' }])).toBe('replaced')
  })

  it('resolve the same field whichever form names it', async () => {
    expect(
      await valueAfter({ a: { b: 1 } }, [
        { type: 'increment', path: 'a.b', by: 1 },
        { type: 'increment', path: ['a', 'b'], by: 1 },
        { type: 'increment', path: '/a/b', by: 1 },
        { op: 'increment', path: '/a/b', value: 1 },
        { type: 'test', path: 'a.b', value: 5 },
      ]),
    ).toStrictEqual({ a: { b: 5 } })
  })
})

describe('update on a missing key', () => {
  it('starts from {}', async () => {
    const state = freshManager()
    expect(await state.update('g', 'new', [{ type: 'merge', value: { a: 1 } }])).toEqual({ new_value: { a: 1 }, old_value: null })
    expect(await state.get('g', 'new')).toEqual({ a: 1 })
    expect(await state.listGroups()).toEqual(['g'])
  })

  it('sees {} at the root for a test op', async () => {
    expect(await valueAfter(undefined, [{ type: 'test', path: '', value: {} }, { type: 'set', path: 'created', value: true }])).toStrictEqual({
      created: true,
    })
  })
})

describe('all-or-nothing', () => {
  it('leaves the value unchanged when an op fails after successful ones', async () => {
    const err = await opFailure(
      { n: 1, s: 'text' },
      [
        { type: 'increment', path: 'n', by: 1 },
        { type: 'set', path: 't', value: 'new' },
        { type: 'increment', path: 's', by: 1 },
      ],
      'increment.not_number',
      2,
    )
    expect(err.code).toBe('increment.not_number')
  })

  it('creates no key when an update of a missing key fails', async () => {
    await opFailure(undefined, [okOp, { type: 'set', path: 'a', value: 1 }, { type: 'test', path: 'a', value: 2 }], 'test.failed', 2)
  })

  it('creates no key when a malformed op follows valid ones on a missing key', async () => {
    await opFailure(undefined, [okOp, { type: 'frobnicate', path: 'a' }], 'INVALID_OP', 1)
  })
})

describe('op failures', () => {
  it.each([
    ['a string', 'text'],
    ['an object', { a: 1 }],
    ['an array', [1]],
    ['null', null],
    ['a boolean', true],
  ])('increment of %s fails with increment.not_number', async (_name, current) => {
    await opFailure({ v: current }, [okOp, { type: 'increment', path: 'v', by: 1 }], 'increment.not_number', 1)
  })

  it('JSON-Patch increment of a string fails with increment.not_number', async () => {
    await opFailure({ v: 'text' }, [{ op: 'increment', path: '/v', value: 1 }], 'increment.not_number', 0)
  })

  it.each([
    ['a string', 'text'],
    ['an object', { a: 1 }],
    ['null', null],
  ])('decrement of %s fails with decrement.not_number', async (_name, current) => {
    await opFailure({ v: current }, [okOp, okOp, { type: 'decrement', path: 'v', by: 1 }], 'decrement.not_number', 2)
  })

  it.each([
    ['a string', 'text'],
    ['a number', 1],
    ['an array', [1]],
    ['null', null],
  ])('merge into %s fails with merge.target_not_object', async (_name, current) => {
    await opFailure({ v: current }, [okOp, { type: 'merge', path: 'v', value: { a: 1 } }], 'merge.target_not_object', 1)
  })

  it('merge into a root value that is not an object fails with merge.target_not_object', async () => {
    await opFailure([1, 2], [{ type: 'merge', value: { a: 1 } }], 'merge.target_not_object', 0)
  })

  it.each([
    ['a number', 1, 'x'],
    ['an object', { a: 1 }, 'x'],
    ['a boolean', true, 'x'],
    ['a string, given a number', 'text', 1],
    ['a string, given an object', 'text', { a: 1 }],
  ])('append onto %s fails with append.type_mismatch', async (_name, current, value) => {
    await opFailure({ v: current }, [okOp, { type: 'append', path: 'v', value }], 'append.type_mismatch', 1)
  })

  it.each([
    ['a number', 5],
    ['a string', 'text'],
    ['null', null],
    ['a boolean', false],
  ])('a write that walks through %s fails with path.not_container', async (_name, current) => {
    await opFailure({ a: current }, [okOp, { type: 'set', path: 'a.b', value: 1 }], 'path.not_container', 1)
    await opFailure({ a: current }, [{ type: 'increment', path: ['a', 'b', 'c'], by: 1 }], 'path.not_container', 0)
  })
})

describe('prototype-polluting paths', () => {
  const forbidden = ['__proto__', 'constructor', 'prototype']
  const pathForms = (segment: string): Array<[string, unknown]> => [
    ['dotted first segment', `${segment}.x`],
    ['dotted last segment', `a.${segment}`],
    ['dotted middle segment', `a.${segment}.b`],
    ['single dotted segment', segment],
    ['literal segment array', ['a', segment]],
    ['JSON Pointer', `/${segment}/x`],
    ['JSON Pointer last segment', `/a/${segment}`],
  ]
  const cases = forbidden.flatMap((segment) => pathForms(segment).map(([form, path]) => [segment, form, path] as const))

  it.each(cases)('%s as a %s is rejected with path.proto_polluted on every type op', async (_segment, _form, path) => {
    const ops = [
      { type: 'set', path, value: { polluted: true } },
      { type: 'merge', path, value: { polluted: true } },
      { type: 'increment', path, by: 1 },
      { type: 'decrement', path, by: 1 },
      { type: 'append', path, value: 'x' },
      { type: 'remove', path },
      { type: 'test', path, value: null },
    ]
    for (const op of ops) {
      await opFailure({ a: { b: 1 } }, [okOp, op], 'path.proto_polluted', 1)
      await opFailure(undefined, [okOp, op], 'path.proto_polluted', 1)
    }
    expect(({} as any).polluted).toBeUndefined()
  })

  it.each(forbidden)('%s in a JSON-Patch path is rejected with path.proto_polluted', async (segment) => {
    const ops = [
      { op: 'add', path: `/${segment}/polluted`, value: true },
      { op: 'replace', path: `/a/${segment}`, value: true },
      { op: 'remove', path: `/${segment}` },
      { op: 'increment', path: `/a/${segment}/n`, value: 1 },
      { op: 'test', path: `/${segment}`, value: null },
    ]
    for (const op of ops) {
      await opFailure({ a: { b: 1 } }, [okOp, okOp, op], 'path.proto_polluted', 2)
    }
    expect(({} as any).polluted).toBeUndefined()
  })

  it.each(forbidden)('%s written with JSON Pointer escapes around it is still a plain key', async (segment) => {
    // `~0` and `~1` decode to `~` and `/`, so these segments merely contain the forbidden word.
    expect(await valueAfter({}, [{ type: 'set', path: `/${segment}~1x`, value: 1 }])).toStrictEqual({ [`${segment}/x`]: 1 })
  })
})

describe('malformed ops', () => {
  const malformed: Array<[string, unknown]> = [
    ['an unknown type', { type: 'frobnicate', path: 'a', value: 1 }],
    ['an unknown JSON-Patch op', { op: 'frobnicate', path: '/a', value: 1 }],
    ['neither type nor op', { path: 'a', value: 1 }],
    ['an op that is null', null],
    ['an op that is a string', 'set'],
    ['an op that is a number', 7],
    ['set without a path', { type: 'set', value: 1 }],
    ['increment without a path', { type: 'increment', by: 1 }],
    ['decrement without a path', { type: 'decrement', by: 1 }],
    ['remove without a path', { type: 'remove' }],
    ['test without a path', { type: 'test', value: 1 }],
    ['JSON-Patch add without a path', { op: 'add', value: 1 }],
    ['JSON-Patch remove without a path', { op: 'remove' }],
    ['a numeric path', { type: 'set', path: 5, value: 1 }],
    ['a null path', { type: 'set', path: null, value: 1 }],
    ['an object path', { type: 'remove', path: { a: 1 } }],
    ['a boolean path', { type: 'increment', path: true, by: 1 }],
    ['a segment array holding a number', { type: 'set', path: ['a', 1], value: 1 }],
    ['a numeric JSON-Patch path', { op: 'replace', path: 3, value: 1 }],
    ['increment by NaN', { type: 'increment', path: 'n', by: NaN }],
    ['increment by Infinity', { type: 'increment', path: 'n', by: Infinity }],
    ['increment by -Infinity', { type: 'increment', path: 'n', by: -Infinity }],
    ['increment by a numeric string', { type: 'increment', path: 'n', by: '5' }],
    ['increment by null', { type: 'increment', path: 'n', by: null }],
    ['increment without by', { type: 'increment', path: 'n' }],
    ['decrement by NaN', { type: 'decrement', path: 'n', by: NaN }],
    ['decrement by Infinity', { type: 'decrement', path: 'n', by: Infinity }],
    ['decrement by a string', { type: 'decrement', path: 'n', by: 'one' }],
    ['decrement without by', { type: 'decrement', path: 'n' }],
    ['JSON-Patch increment by a string', { op: 'increment', path: '/n', value: '5' }],
    ['JSON-Patch increment by NaN', { op: 'increment', path: '/n', value: NaN }],
    ['JSON-Patch increment without a value', { op: 'increment', path: '/n' }],
    ['merge of a number', { type: 'merge', value: 5 }],
    ['merge of a string', { type: 'merge', path: 'a', value: 'text' }],
    ['merge of an array', { type: 'merge', value: [1] }],
    ['merge of null', { type: 'merge', value: null }],
    ['merge without a value', { type: 'merge', path: 'a' }],
    ['set of undefined', { type: 'set', path: 'a', value: undefined }],
    ['set without a value', { type: 'set', path: 'a' }],
    ['set of a function', { type: 'set', path: 'a', value: () => 1 }],
    ['set of NaN', { type: 'set', path: 'a', value: NaN }],
    ['set of Infinity', { type: 'set', path: 'a', value: Infinity }],
    ['set of a BigInt', { type: 'set', path: 'a', value: 10n }],
    ['set of a symbol', { type: 'set', path: 'a', value: Symbol('s') }],
    ['append of undefined', { type: 'append', path: 'list', value: undefined }],
    ['append of a function', { type: 'append', path: 'list', value: () => 1 }],
    ['test against NaN', { type: 'test', path: 'n', value: NaN }],
    ['test against a BigInt', { type: 'test', path: 'n', value: 1n }],
    ['JSON-Patch add of undefined', { op: 'add', path: '/a', value: undefined }],
    ['JSON-Patch replace of a function', { op: 'replace', path: '/a', value: () => 1 }],
    ['JSON-Patch test against a BigInt', { op: 'test', path: '/n', value: 2n }],
  ]

  it.each(malformed)('%s rejects with INVALID_OP and its opIndex', async (_name, op) => {
    await opFailure({ n: 1, list: [], a: {} }, [okOp, op], 'INVALID_OP', 1)
    await opFailure({ n: 1, list: [], a: {} }, [op], 'INVALID_OP', 0)
    await opFailure(undefined, [okOp, okOp, okOp, op, okOp], 'INVALID_OP', 3)
  })
})

describe('ops that are not an array', () => {
  it.each([
    ['a single op object', { type: 'set', path: 'a', value: 1 }],
    ['a string', 'set'],
    ['null', null],
    ['undefined', undefined],
    ['a number', 42],
    ['an array-like object', { length: 1, 0: { type: 'set', path: 'a', value: 1 } }],
  ])('%s rejects with a TypeError of code INVALID_ARGUMENT', async (_name, ops) => {
    const state = freshManager()
    await state.set('g', 'k', { a: 0 })
    const err = await expectRejectionLeavesStoreUnchanged(state, () => state.update('g', 'k', ops as any), 'INVALID_ARGUMENT', [['g', 'k']])
    expect(err).toBeInstanceOf(TypeError)
    const missing = await expectRejection(() => state.update('g', 'absent', ops as any), 'INVALID_ARGUMENT')
    expect(missing).toBeInstanceOf(TypeError)
    expect(await state.get('g', 'absent')).toBeNull()
  })
})

describe('a failed update', () => {
  it('leaves the manager usable for the next update', async () => {
    const state: StateManager = freshManager()
    await state.set('g', 'k', { n: 1 })
    await expectRejection(() => state.update('g', 'k', [{ type: 'increment', path: 'missing.deep', by: NaN }] as any), 'INVALID_OP')
    expect(await state.update('g', 'k', [{ type: 'increment', path: 'n', by: 1 }])).toEqual({ new_value: { n: 2 }, old_value: { n: 1 } })
  })
})

// The op list crosses to the engine as JSON text, made without JSON.stringify for the simple
// ops almost every caller writes (lib/ops-text.js). That text must be JSON.stringify's, to the
// character, and every other list must be left to JSON.stringify.
describe('the text of an op list', () => {
  const text = (ops: unknown[]) => simpleOpsText(ops, ops.length) as string | undefined

  it.each([
    [[{ type: 'increment', path: 'paid', by: 1 }]],
    [[{ type: 'increment', path: 'paid', by: 1 }, { type: 'set', path: 'status', value: 'paid' }]],
    [[{ type: 'decrement', path: 'a.b', by: -0.25 }, { type: 'set', path: 'x', value: null }]],
    [[{ type: 'set', path: 'a', value: true }, { type: 'set', path: 'b', value: false }, { type: 'set', path: 'c', value: -0 }]],
    [[{ type: 'set', path: 'n', value: 1e21 }, { type: 'set', path: 'm', value: 5e-324 }, { type: 'set', path: 'k', value: 2 ** 53 - 1 }]],
    [[{ type: 'remove', path: 'gone' }, { op: 'remove', path: '/gone' }, { op: 'replace', path: '/a/0', value: 'é €😀 ok' }]],
    [[{ type: 'set', path: 'a', value: undefined }, { type: 'increment', path: 'b', by: undefined }]],
    [[{ type: 'increment', path: 'a', by: '1' }, { type: 'nonsense', path: '' }]], // the engine's to reject
    [[]],
  ])('is JSON.stringify\'s for simple ops: %j', (ops) => {
    expect(text(ops)).toBe(JSON.stringify(ops))
  })

  class Op {
    type = 'set'
    path = 'a'
    value = 1
  }
  const nullPrototype = Object.assign(Object.create(null), { type: 'set', path: 'a', value: 1 })
  const withGetter = { type: 'set', path: 'a', get value() { return { nested: true } } }
  const throwing = new Proxy({ type: 'set', path: 'a', value: 1 }, { get() { throw new Error('trap') } })
  const list = [{ type: 'set', path: 'a', value: 1 }]
  const listWithToJson = Object.assign([...list], { toJSON: () => [] })
  it.each([
    ['a nested value', [{ type: 'set', path: 'a', value: { b: 1 } }]],
    ['an array value', [{ type: 'set', path: 'a', value: [1] }]],
    ['a field the engine ignores', [{ type: 'set', path: 'a', value: 1, note: 'x' }]],
    ['fields in another order', [{ path: 'a', type: 'set', value: 1 }]],
    ['by and value both', [{ type: 'set', path: 'a', value: 1, by: 2 }]],
    ['a path as an array', [{ type: 'set', path: ['a'], value: 1 }]],
    ['a quote in a path', [{ type: 'set', path: 'a"b', value: 1 }]],
    ['a backslash in a value', [{ type: 'set', path: 'a', value: 'a\\b' }]],
    ['a control character in a value', [{ type: 'set', path: 'a', value: 'a\nb' }]],
    ['a lone surrogate in a value', [{ type: 'set', path: 'a', value: 'a\ud800' }]],
    ['a lone low surrogate in a path', [{ type: 'set', path: '\udc00a', value: 1 }]],
    ['two surrogates the wrong way round', [{ type: 'set', path: 'a', value: '\ude00\ud83d' }]],
    ['an op of a class', [new Op()]],
    ['an op without a prototype', [nullPrototype]],
    ['an op with toJSON', [{ type: 'set', path: 'a', value: 1, toJSON: () => ({}) }]],
    ['a list with toJSON', listWithToJson],
    ['a getter giving an object', [withGetter]],
    ['a Proxy whose trap throws', [throwing]],
    ['a hole', [, { type: 'set', path: 'a', value: 1 }]], // eslint-disable-line no-sparse-arrays
    ['null', [null]],
    ['a string', ['set']],
  ])('is left to JSON.stringify for %s', (_name, ops) => {
    expect(text(ops as unknown[])).toBeUndefined()
  })

  it('is made anew for an op that differs from the one before it in any one field', () => {
    // lib/ops-text.js gives the last op's text again when every field is the same: each op
    // here differs from the one before it in one field (the form, the name, the path, which
    // last field, its value, its type), and some come twice in a row.
    const ops = [
      { type: 'increment', path: 'n', by: 1 },
      { type: 'increment', path: 'n', by: 1 },
      { op: 'increment', path: 'n', by: 1 },
      { op: 'decrement', path: 'n', by: 1 },
      { op: 'decrement', path: 'm', by: 1 },
      { op: 'decrement', path: 'm', value: 1 },
      { op: 'decrement', path: 'm', value: '1' },
      { op: 'decrement', path: 'm', value: true },
      { op: 'decrement', path: 'm', value: 0 },
      { op: 'decrement', path: 'm', value: -0 },
      { op: 'decrement', path: 'm', value: undefined },
      { op: 'decrement', path: 'm' },
      { op: 'decrement', path: 'm' },
    ]
    for (const op of ops) {
      expect(text([op])).toBe(JSON.stringify([op]))
      expect(text([op, op])).toBe(JSON.stringify([op, op]))
    }
    // One object, changed between calls.
    const op: Record<string, unknown> = { type: 'set', path: 'a', value: 'x' }
    for (const value of ['x', 'y', 'y', 1, 1, null]) {
      op.value = value
      expect(text([op])).toBe(JSON.stringify([op]))
    }
  })

  it('is remembered by the values of the fields, not by the objects, nor only their text', () => {
    // Values that Map keys tell apart (1 and '1') and ones they do not (0 and -0), each twice:
    // the second time from what the first left.
    const values = [1, '1', true, 'true', null, 'null', 0, -0, 1.5, '', undefined, 2 ** 53 - 1, 1e21]
    for (let round = 0; round < 2; round++) {
      for (const last of ['by', 'value']) {
        for (const value of values) {
          const ops = [{ type: 'set', path: 'a', [last]: value }, { op: 'replace', path: '/b', [last]: value }]
          expect(text(ops)).toBe(JSON.stringify(ops))
          expect(text(ops.slice(0, 1))).toBe(JSON.stringify(ops.slice(0, 1)))
          expect(text(ops.slice(1))).toBe(JSON.stringify(ops.slice(1)))
        }
      }
    }
    // The same op object, changed between calls; and a list that grows.
    const op: Record<string, unknown> = { type: 'increment', path: 'n', by: 1 }
    const list: unknown[] = [op]
    for (let i = 0; i < 5; i++) {
      expect(text(list)).toBe(JSON.stringify(list))
      op.by = i
      if (i === 2) op.path = 'm'
      if (i === 3) delete op.by
      list.push({ type: 'set', path: `p${i}`, value: i })
    }
    // What cannot be taken is never remembered as taken.
    expect(text([{ type: 'set', path: 'a', value: NaN }])).toBeUndefined()
    expect(text([{ type: 'set', path: 'a', value: NaN }])).toBeUndefined()
    expect(text([{ type: 'set', path: 'a"', value: 1 }])).toBeUndefined()
    expect(text([{ type: 'set', path: 'a"', value: 1 }])).toBeUndefined()
    // Long texts, which are not remembered, and lists that grow long.
    const long = 'x'.repeat(300)
    const ops = [{ type: 'set', path: 'a', value: long }, { type: 'set', path: long, value: 1 }]
    for (let i = 0; i < 2; i++) expect(text(ops)).toBe(JSON.stringify(ops))
    const many = Array.from({ length: 40 }, (_, i) => ({ type: 'increment', path: `counter${i}`, by: i }))
    for (let i = 0; i < 2; i++) expect(text(many)).toBe(JSON.stringify(many))
  })

  it('is right after more lists than it remembers, and for lists that share their first ops', () => {
    for (let round = 0; round < 2; round++) {
      for (let i = 0; i < 3000; i++) {
        const ops = [
          { type: 'increment', path: `k${i % 7}`, by: i % 5 },
          { type: 'set', path: 'status', value: `s${i % 1500}` },
          ...(i % 3 === 0 ? [{ op: 'remove', path: `/r${i % 11}` }] : []),
        ]
        expect(text(ops)).toBe(JSON.stringify(ops))
        expect(text(ops.slice(0, 2))).toBe(JSON.stringify(ops.slice(0, 2)))
      }
    }
  })

  it('is JSON.stringify\'s, or left to it, for 3,000 random op lists, and taken for the simple ones', () => {
    let seed = 42
    const next = () => {
      seed = (seed + 0x6d2b79f5) | 0
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed)
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296
    }
    const pick = <T>(items: T[]): T => items[Math.floor(next() * items.length)]
    const strings = ['', 'a', 'paid', 'a.b.c', '/a/0', 'é', '😀', '"', '\\', '\n', '\u001f', '\ud800', '\udfff', '~1', ' ']
    const randomString = () => Array.from({ length: Math.floor(next() * 4) }, () => pick(strings)).join('')
    const scalars = () => pick<unknown>([randomString(), next() * 1e6 - 5e5, Math.floor(next() * 100), -0, 1e21, true, false, null, undefined, { a: 1 }, [1]])
    let taken = 0
    let left = 0
    for (let n = 0; n < 3000; n++) {
      const ops = Array.from({ length: Math.floor(next() * 3) + 1 }, () => {
        const op: Record<string, unknown> = {}
        const simple = next() < 0.7
        const names = simple ? [pick(['type', 'op']), 'path', ...(next() < 0.8 ? [pick(['by', 'value'])] : [])] : ['path', 'type', 'value', 'by', 'note'].filter(() => next() < 0.6)
        for (const name of names) op[name] = name === 'type' || name === 'op' || name === 'path' ? randomString() : scalars()
        return op
      })
      const made = text(ops)
      if (made !== undefined) {
        taken += 1
        expect(made).toBe(JSON.stringify(ops))
        JSON.parse(made)
      } else {
        left += 1
      }
    }
    expect(taken).toBeGreaterThan(100)
    expect(left).toBeGreaterThan(100)
  })
})
