// Tests of the order-flow steps (order-flow.js) with vitest and `stepstate/testing`: each test
// gets a fresh in-memory store, hands `{ state, logger }` to a step, and checks the values and
// change events the step left. `npm test` runs this file in vitest's threads pool and in its
// forks pool (examples/vitest.config.mjs).
import { afterEach, describe, expect, it } from 'vitest'
import { createTestState, closeTestStates } from 'stepstate/testing'
import flow from './order-flow.js'

const { apiCreateOrder, queueMarkPaid, cronReport } = flow
const logger = { info() {}, warn() {} }

afterEach(closeTestStates)

describe('apiCreateOrder', () => {
  it('stores a pending order under a fresh id', async () => {
    const t = createTestState()
    const res = await apiCreateOrder({ body: { item: 'book', quantity: 2 } }, t.context({ logger }))
    expect(res.status).toBe(201)
    expect(await t.values('orders')).toEqual({
      'order-1': { id: 'order-1', item: 'book', quantity: 2, status: 'pending', payments: 0 },
    })
    expect((await t.changes()).map((e) => [e.event_type, e.group_id, e.item_id])).toEqual([
      ['state:created', 'counters', 'orders'],
      ['state:created', 'orders', 'order-1'],
    ])
  })

  it('stores nothing for a bad request', async () => {
    const t = createTestState()
    const res = await apiCreateOrder({ body: { quantity: 3 } }, t.context({ logger }))
    expect(res.status).toBe(400)
    expect(await t.snapshot()).toEqual({})
    expect(await t.changes()).toEqual([])
  })
})

describe('queueMarkPaid', () => {
  it('marks a pending order paid once, even when the message comes twice at the same time', async () => {
    const t = createTestState()
    await t.state.set('orders', 'o1', { id: 'o1', status: 'pending', payments: 0 })
    await t.clearChanges()
    const results = await Promise.all([
      queueMarkPaid({ orderId: 'o1' }, t.context({ logger })),
      queueMarkPaid({ orderId: 'o1' }, t.context({ logger })),
    ])
    expect(results.filter(Boolean)).toHaveLength(1)
    expect(await t.state.get('orders', 'o1')).toEqual({ id: 'o1', status: 'paid', payments: 1 })
    const changes = await t.changes()
    expect(changes).toHaveLength(1)
    expect(changes[0]).toMatchObject({ event_type: 'state:updated', old_value: { status: 'pending' }, new_value: { status: 'paid' } })
  })
})

describe('cronReport', () => {
  it('counts orders by status and writes nothing', async () => {
    const t = createTestState()
    await t.state.set('orders', 'o1', { id: 'o1', status: 'pending' })
    await t.state.set('orders', 'o2', { id: 'o2', status: 'paid' })
    await t.clearChanges()
    const log = console.log
    console.log = () => {}
    try {
      expect(await cronReport(t.context({ logger }))).toBe('report: 1 pending, 1 paid')
    } finally {
      console.log = log
    }
    expect(await t.changes()).toEqual([])
  })
})
