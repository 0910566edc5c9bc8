// Type tests: change events. `onChange` listeners and `watch` iterators receive
// StateChangeEvent objects with the SPEC's fields (typed by group when the filter names one,
// or narrowed by `group_id` on unfiltered typed managers), `onChange` returns an unsubscribe
// function, and the `'error'` hook reports listener failures. Misspelled event fields, wrong
// event_type / reason literals and wrong filters do not compile.

import {
  StateManager,
  type StateChangeEvent,
  type ChangeFilter,
  type ChangeListener,
} from '../../index'
import { expectType } from './assert'

type Order = { id: string; status: 'pending' | 'paid' }
type User = { name: string; logins: number }

async function typedEvents() {
  const state = new StateManager<{ orders: Order; users: User }>()

  // A group filter types the event's values.
  const off = state.onChange(
    async (e) => {
      expectType<'state'>()(e.type)
      expectType<'state:created' | 'state:updated' | 'state:deleted'>()(e.event_type)
      expectType<'orders'>()(e.group_id)
      expectType<string>()(e.item_id)
      expectType<Order | null>()(e.old_value)
      expectType<Order | null>()(e.new_value)
      expectType<'expired' | 'cleared' | undefined>()(e.reason)
      if (e.event_type === 'state:updated' && e.new_value?.status === 'paid') {
        await state.update('users', 'u1', [{ type: 'increment', path: 'logins', by: 1 }])
      }
    },
    { group: 'orders', key: 'o1', condition: (e) => e.new_value?.status === 'paid' },
  )
  expectType<() => void>()(off)
  off()

  // Without a filter, the event is a union discriminated by group_id.
  state.onChange((e) => {
    if (e.group_id === 'users') {
      expectType<User | null>()(e.new_value)
    } else {
      expectType<'orders'>()(e.group_id)
      expectType<Order | null>()(e.new_value)
    }
  })

  // A synchronous listener and an annotated listener are fine too.
  const onOrder = (e: StateChangeEvent<Order>): void => {
    void e.new_value?.id
  }
  state.onChange(onOrder, { group: 'orders' })
  state.onChange(() => {})

  // @ts-expect-error the event field is item_id, not key
  state.onChange((e) => e.key, { group: 'orders' })
  // @ts-expect-error the event field is new_value, not value
  state.onChange((e) => e.value)
  // @ts-expect-error event_type is 'state:created' | 'state:updated' | 'state:deleted'
  state.onChange(() => {}, { condition: (e) => e.event_type === 'created' })
  state.onChange((e) => {
    // @ts-expect-error reason is 'expired' | 'cleared'
    if (e.reason === 'deleted') return
  })
  // Any listener result is accepted (it is ignored).
  const seen: StateChangeEvent[] = []
  state.onChange((e) => seen.push(e))
  // @ts-expect-error Order has no field logins
  state.onChange((e) => e.new_value?.logins, { group: 'orders' })
  // @ts-expect-error the filter's group must be a group of this manager
  state.onChange(() => {}, { group: 'invoices' })
  // @ts-expect-error a User listener does not fit the orders group
  state.onChange((e: StateChangeEvent<User, 'users'>) => {}, { group: 'orders' })
  // @ts-expect-error the filter has no field `type`
  state.onChange(() => {}, { type: 'state:created' })
  // @ts-expect-error condition returns a boolean
  state.onChange(() => {}, { condition: (e) => e.new_value })

  // watch(): the async-iterator form, typed the same way.
  const changes = state.watch({ group: 'users' })
  for await (const e of changes) {
    expectType<StateChangeEvent<User, 'users'>>()(e)
    expectType<User | null>()(e.new_value)
    if (e.event_type === 'state:deleted') break
  }
  const next = await changes.next()
  if (!next.done) expectType<User | null>()(next.value.old_value)
  await changes.return()
  // @ts-expect-error watch's filter group must be a group of this manager
  state.watch({ group: 'invoices' })
}

async function untypedEvents() {
  const state = new StateManager()

  state.onChange((e) => {
    expectType<any>()(e.new_value)
    expectType<'anything'>()(e.group_id)
  }, { group: 'anything' })
  state.onChange((e) => {
    expectType<StateChangeEvent<any, string>>()(e)
  })
  state.onChange<Order>((e) => {
    expectType<Order | null>()(e.new_value)
  }, { group: 'orders', condition: (e) => e.old_value?.status === 'pending' })

  for await (const e of state.watch<Order>({ group: 'orders' })) {
    expectType<Order | null>()(e.new_value)
  }
  for await (const e of state.watch()) {
    expectType<StateChangeEvent<any, string>>()(e)
  }

  // Reusable filter and listener types.
  const filter: ChangeFilter = { group: 'orders', key: 'o1', condition: (e) => e.event_type === 'state:deleted' && e.reason === 'expired' }
  const listener: ChangeListener = async (e) => {
    await state.delete(e.group_id, e.item_id)
  }
  state.onChange(listener, filter)
}

function errorHook() {
  const state = new StateManager()
  // Listener errors are reported through the 'error' event (the class is an EventEmitter).
  const onError = (err: unknown, event: StateChangeEvent) => {
    console.error('listener failed on', event.group_id, event.item_id, err)
  }
  expectType<StateManager>()(state.on('error', onError))
  state.once('error', (err, event) => {
    expectType<unknown>()(err)
    expectType<string>()(event.item_id)
  })
  state.off('error', onError)
  state.addListener('error', onError).removeListener('error', onError)
  // @ts-expect-error the event object has no field `key`
  state.on('error', (_err, event) => event.key)
}

declare const console: { error(...args: unknown[]): void }

export { typedEvents, untypedEvents, errorHook }
