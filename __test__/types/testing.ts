// Type tests: `stepstate/testing`. A typed test state gives a typed manager and typed values;
// the context carries `state` beside whatever else the handler takes.

import { createTestState, closeTestStates, type TestState } from '../../testing'
import type { StateChangeEvent, StateManager } from '../../index'
import { expectType } from './assert'

type Order = { id: string; status: 'pending' | 'paid' }

async function usesTesting() {
  const t: TestState<{ orders: Order }> = createTestState<{ orders: Order }>()
  expectType<StateManager<{ orders: Order }>>()(t.state)
  expectType<Record<string, Order>>()(await t.values('orders'))
  expectType<StateChangeEvent[]>()(await t.changes())
  const logger = { info: (_message: string) => {} }
  const context = t.context({ logger })
  expectType<StateManager<{ orders: Order }>>()(context.state)
  expectType<{ info: (_message: string) => void }>()(context.logger)
  // @ts-expect-error: an unknown group does not compile
  await t.values('users')
  await closeTestStates()
}

void usesTesting
