// Type tests: UpdateOp. Every op of SPEC "UpdateOp" compiles in both notations (type-style and
// JSON-Patch style), with every Path form (dotted, JSON Pointer, literal segments, root), in
// literal arrays, typed arrays and `as const` arrays; malformed ops do not compile.

import { StateManager, type UpdateOp, type Path, type JsonValue, type JsonObject } from '../../index'
import { expectType } from './assert'

type Order = { id: string; status: string; payments: number; items: string[] }

async function everyOp() {
  const state = new StateManager<{ orders: Order }>()

  await state.update('orders', 'o1', [
    { type: 'test', path: 'status', value: 'pending' },
    { type: 'set', path: 'status', value: 'paid' },
    { type: 'set', path: ['meta.v2', 'owner'], value: { name: 'Ada', tags: ['a', 'b'], n: null } },
    { type: 'merge', value: { status: 'paid' } },
    { type: 'merge', path: '', value: { a: 1 } },
    { type: 'merge', path: 'customer', value: { email: 'a@b.c' } },
    { type: 'increment', path: 'payments', by: 1 },
    { type: 'increment', path: '/stats/count', by: 2.5 },
    { type: 'decrement', path: 'stock', by: 1 },
    { type: 'append', path: 'items', value: 'sku-1' },
    { type: 'append', value: '-suffix' },
    { type: 'remove', path: 'draft' },
    { type: 'remove', path: ['a~b', 'c/d'] },
    { op: 'add', path: '/items/-', value: 'sku-2' },
    { op: 'replace', path: '/status', value: 'paid' },
    { op: 'test', path: '/status', value: 'paid' },
    { op: 'remove', path: '/draft' },
    { op: 'increment', path: '/payments', value: 1 },
  ])

  // Ops built elsewhere: a typed array, a readonly `as const` list, a Path variable.
  const path: Path = ['a', 'b']
  const ops: UpdateOp[] = [{ type: 'set', path, value: 1 }]
  await state.update('orders', 'o1', ops)
  const frozen = [
    { type: 'test', path: 'status', value: 'pending' },
    { type: 'set', path: ['status'], value: 'paid' },
  ] as const
  await state.update('orders', 'o1', frozen)
  await state.update('orders', 'o1', [])

  // A merge value may be a typed partial object; JsonValue/JsonObject accept plain JSON.
  const patch: Partial<Order> = { status: 'paid' }
  await state.update('orders', 'o1', [{ type: 'merge', value: patch }])
  const json: JsonValue = { list: [1, 'two', false, null, { deep: {} }] }
  const obj: JsonObject = { x: json }
  await state.update('orders', 'o1', [{ type: 'set', path: 'x', value: json }, { type: 'merge', value: obj }])

  // The result is the group's { new_value, old_value }.
  const { new_value, old_value } = await state.update('orders', 'o1', [{ type: 'increment', path: 'payments', by: 1 }])
  expectType<Order>()(new_value)
  expectType<Order | null>()(old_value)
}

async function malformedOps() {
  const state = new StateManager()

  // @ts-expect-error unknown op type
  await state.update('g', 'k', [{ type: 'multiply', path: 'n', by: 2 }])
  // @ts-expect-error unknown JSON-Patch op
  await state.update('g', 'k', [{ op: 'move', from: '/a', path: '/b' }])
  // @ts-expect-error increment needs `by`
  await state.update('g', 'k', [{ type: 'increment', path: 'n' }])
  // @ts-expect-error `by` is a number
  await state.update('g', 'k', [{ type: 'increment', path: 'n', by: '1' }])
  // @ts-expect-error set needs a path
  await state.update('g', 'k', [{ type: 'set', value: 1 }])
  // @ts-expect-error set needs a value
  await state.update('g', 'k', [{ type: 'set', path: 'a' }])
  // @ts-expect-error a merge value is an object
  await state.update('g', 'k', [{ type: 'merge', value: [1, 2] }])
  // @ts-expect-error a merge value is an object
  await state.update('g', 'k', [{ type: 'merge', path: 'a', value: 'text' }])
  // @ts-expect-error remove needs a path
  await state.update('g', 'k', [{ type: 'remove' }])
  // @ts-expect-error a path is a string or an array of strings
  await state.update('g', 'k', [{ type: 'remove', path: 3 }])
  // @ts-expect-error a path segment is a string
  await state.update('g', 'k', [{ type: 'remove', path: ['a', 0] }])
  // @ts-expect-error a JSON-Patch path is a string, not segments
  await state.update('g', 'k', [{ op: 'remove', path: ['a', 'b'] }])
  // @ts-expect-error a JSON-Patch increment carries its amount in `value`, a number
  await state.update('g', 'k', [{ op: 'increment', path: '/n', value: 'one' }])
  // @ts-expect-error add needs a value
  await state.update('g', 'k', [{ op: 'add', path: '/a' }])
  // @ts-expect-error a value is JSON: no functions
  await state.update('g', 'k', [{ type: 'set', path: 'f', value: () => 1 }])
  // @ts-expect-error a value is JSON: no undefined
  await state.update('g', 'k', [{ type: 'set', path: 'u', value: undefined }])
  // @ts-expect-error a value is JSON: no BigInt
  await state.update('g', 'k', [{ type: 'append', path: 'list', value: 1n }])
  // @ts-expect-error an op has either `type` or `op`
  await state.update('g', 'k', [{ path: 'a', value: 1 }])
}

export { everyOp, malformedOps }
