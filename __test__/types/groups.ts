// Type tests: group-scoped generics. A typed manager (`StateManager<{ orders: Order; users: User }>`)
// types every method's values by group and rejects unknown groups and wrongly typed values; an
// untyped manager accepts any group, yields `any`, and takes an explicit value type
// (`get<Order>(...)`). Also checks the result shapes of every read and write method.

import { StateManager, type StreamSetResult, type StateEntry } from '../../index'
import { expectType } from './assert'

type Order = { id: string; status: 'pending' | 'paid'; total: number; payments?: number }
type User = { name: string; logins: number }
type Groups = { orders: Order; users: User }

const order: Order = { id: 'o1', status: 'pending', total: 42 }
const user: User = { name: 'Ada', logins: 0 }

async function typedManager() {
  const state = new StateManager<Groups>()

  // Reads are typed by group.
  expectType<Order | null>()(await state.get('orders', 'o1'))
  expectType<User | null>()(await state.get('users', 'u1'))
  expectType<Order[]>()(await state.getGroup('orders'))
  expectType<User[]>()(await state.list('users'))
  expectType<Array<StateEntry<Order>>>()(await state.entries('orders'))
  expectType<Array<{ key: string; value: Order }>>()(await state.entries('orders'))
  expectType<string[]>()(await state.keys('orders'))
  expectType<string[]>()(await state.listGroups())
  expectType<Order | null>()(await state.delete('orders', 'o1'))
  expectType<void>()(await state.clear('users'))

  // Writes require the group's value type and resolve { new_value, old_value }.
  const written = await state.set('orders', 'o1', order)
  expectType<StreamSetResult<Order>>()(written)
  expectType<Order>()(written.new_value)
  expectType<Order | null>()(written.old_value)
  expectType<StreamSetResult<User>>()(await state.set('users', 'u1', user, { ttl: 60 }))
  await state.set('users', 'u1', { name: 'Bob', logins: 1 })
  expectType<StreamSetResult<Order>>()(await state.update('orders', 'o1', [{ type: 'set', path: 'status', value: 'paid' }]))

  // An unknown group does not compile, whatever the method.
  // @ts-expect-error 'invoices' is not a group of this manager
  await state.get('invoices', 'i1')
  // @ts-expect-error 'invoices' is not a group of this manager
  await state.set('invoices', 'i1', order)
  // @ts-expect-error 'invoices' is not a group of this manager
  await state.getGroup('invoices')
  // @ts-expect-error 'invoices' is not a group of this manager
  await state.list('invoices')
  // @ts-expect-error 'invoices' is not a group of this manager
  await state.entries('invoices')
  // @ts-expect-error 'invoices' is not a group of this manager
  await state.keys('invoices')
  // @ts-expect-error 'invoices' is not a group of this manager
  await state.delete('invoices', 'i1')
  // @ts-expect-error 'invoices' is not a group of this manager
  await state.clear('invoices')
  // @ts-expect-error 'invoices' is not a group of this manager
  await state.update('invoices', 'i1', [])

  // A value of the wrong type does not compile.
  // @ts-expect-error a User is not an Order
  await state.set('orders', 'o1', user)
  // @ts-expect-error an Order is not a User
  await state.set('users', 'u1', order)
  // @ts-expect-error a field of the wrong type
  await state.set('users', 'u1', { name: 'Ada', logins: 'zero' })
  // @ts-expect-error a missing required field
  await state.set('users', 'u1', { name: 'Ada' })
  // @ts-expect-error status must be 'pending' | 'paid'
  await state.set('orders', 'o1', { id: 'o1', status: 'shipped', total: 1 })

  // Reads are not `any`: a wrong use of the result does not compile.
  const got = await state.get('users', 'u1')
  // @ts-expect-error the result may be null
  got.name
  // @ts-expect-error User has no field total
  got?.total
  // @ts-expect-error group and key are strings
  await state.get('users', 1)
  // @ts-expect-error opts.ttl is a number of seconds
  await state.set('users', 'u1', user, { ttl: '1m' })
}

async function untypedManager() {
  const state = new StateManager()

  // Any string group compiles; results are `any` unless a value type is given.
  const group: string = 'anything:at/all'
  await state.set(group, 'k', { any: ['json', 1, true, null] })
  await state.set('counters', 'k', 0)
  expectType<any>()(await state.get('orders', 'o1'))
  expectType<any[]>()(await state.getGroup('orders'))

  // An explicit value type for untyped managers, on every value-bearing method.
  expectType<Order | null>()(await state.get<Order>('orders', 'o1'))
  expectType<string | null>()(await state.get<string>('names', 'n1'))
  expectType<Order[]>()(await state.getGroup<Order>('orders'))
  expectType<Order[]>()(await state.list<Order>('orders'))
  expectType<Array<StateEntry<Order>>>()(await state.entries<Order>('orders'))
  expectType<Order | null>()(await state.delete<Order>('orders', 'o1'))
  expectType<StreamSetResult<Order>>()(await state.set<Order>('orders', 'o1', order))
  expectType<StreamSetResult<number>>()(await state.set<number>('counters', 'c', 1))
  expectType<StreamSetResult<Order>>()(
    await state.update<Order>('orders', 'o1', [{ type: 'increment', path: 'payments', by: 1 }]),
  )

  // @ts-expect-error with an explicit value type, the value must have it
  await state.set<Order>('orders', 'o1', user)
  // @ts-expect-error with an explicit value type, the value must have it
  await state.set<number>('counters', 'c', '1')
  // @ts-expect-error group must be a string
  await state.get(42, 'k')
  // @ts-expect-error update takes an array of ops
  await state.update('orders', 'o1', { type: 'set', path: 'status', value: 'paid' })
}

async function openAndExplicitTypeOnTypedManager() {
  const state = await StateManager.open<Groups>({ adapter: 'file', path: '.stepstate' })
  expectType<StateManager<Groups>>()(state)
  expectType<Order | null>()(await state.get('orders', 'o1'))
  // An explicit value type still works on a typed manager, restricted to its groups.
  type OrderSummary = Pick<Order, 'id' | 'status'>
  expectType<OrderSummary | null>()(await state.get<OrderSummary>('orders', 'o1'))
  // @ts-expect-error an explicit value type does not open unknown groups
  await state.get<OrderSummary>('invoices', 'i1')

  const untyped = await StateManager.open()
  expectType<StateManager<Record<string, any>>>()(untyped)
  await untyped.close()
  expectType<void>()(await state.close())
}

export { typedManager, untypedManager, openAndExplicitTypeOnTypedManager }
