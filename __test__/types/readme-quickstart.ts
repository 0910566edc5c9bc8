// Type tests: the README's quickstart, as written there, compiles (and its results have the
// types the README's comments claim). Keep the two in step.

import { StateManager } from '../../index'
import { expectType } from './assert'

type Order = { id: string; status: 'pending' | 'paid'; payments: number }

export async function quickstart(): Promise<void> {
  const state = await StateManager.open<{ orders: Order }>({ adapter: 'file', path: '.stepstate' })

  await state.set('orders', 'o1', { id: 'o1', status: 'pending', payments: 0 })

  const paid = await state.update('orders', 'o1', [
    { type: 'test', path: 'status', value: 'pending' },
    { type: 'set', path: 'status', value: 'paid' },
    { type: 'increment', path: 'payments', by: 1 },
  ])
  expectType<Order>()(paid.new_value)
  expectType<Order | null>()(paid.old_value)

  const off = state.onChange((e) => console.log(e.event_type, e.item_id), { group: 'orders' })
  expectType<Order[]>()(await state.getGroup('orders'))
  off()
  await state.close()

  // @ts-expect-error: the quickstart's store has no 'users' group
  await state.get('users', 'u1')
}

declare const console: { log(...args: unknown[]): void }
