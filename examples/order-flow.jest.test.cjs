// Tests of the order-flow steps (order-flow.js) with jest (CommonJS) and `stepstate/testing`:
// the same checks as order-flow.vitest.test.mjs. Jest gives each test file a registry of its
// own and loads stepstate again in it; the last test here does so twice more on purpose
// (`jest.isolateModules`), as a run of many test files in one worker would. `npm test` runs it:
// `jest --config examples/jest.config.cjs`.
const { createTestState, closeTestStates } = require('stepstate/testing')
const { apiCreateOrder, queueMarkPaid, cronReport } = require('./order-flow.js')

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
    expect((await apiCreateOrder({ body: { quantity: 3 } }, t.context({ logger }))).status).toBe(400)
    expect(await t.snapshot()).toEqual({})
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
    expect(await t.changes()).toEqual([expect.objectContaining({ event_type: 'state:updated' })])
  })
})

describe('cronReport', () => {
  it('counts orders by status and writes nothing', async () => {
    const t = createTestState()
    await t.state.set('orders', 'o1', { id: 'o1', status: 'pending' })
    await t.state.set('orders', 'o2', { id: 'o2', status: 'paid' })
    await t.clearChanges()
    const log = jest.spyOn(console, 'log').mockImplementation(() => {})
    expect(await cronReport(t.context({ logger }))).toBe('report: 1 pending, 1 paid')
    log.mockRestore()
    expect(await t.changes()).toEqual([])
  })
})

describe('stepstate loaded again', () => {
  it('works in a fresh module registry, as in the next test file', async () => {
    for (let round = 0; round < 2; round++) {
      let testing
      jest.isolateModules(() => {
        testing = require('stepstate/testing')
      })
      const t = testing.createTestState()
      await queueMarkPaid({ orderId: 'missing' }, t.context({ logger })).catch((err) => err)
      await t.state.update('counters', 'c', [{ type: 'increment', path: 'n', by: 1 }])
      expect(await t.values('counters')).toEqual({ c: { n: 1 } })
      await t.close()
    }
  })
})
