'use strict'
// The in-memory suite: stepstate's memory store beside a JS Map + structuredClone and a JS Map
// holding JSON text, on awaited get/set/update of a ~230-byte object, getGroup of 1k and 10k
// items, 10,000 concurrent increments of one key and 64-in-flight mixed traffic.

const { StateManager } = require('..')
const { MapClone, MapJson } = require('./reference-stores')
const { order, measure, printTable } = require('./harness')

const SEQUENTIAL_OPS = Number(process.env.BENCH_OPS || 50_000)
const KEYS = 1000

const stores = [
  { name: 'stepstate', open: async () => new StateManager() },
  { name: 'Map+structuredClone', open: async () => new MapClone() },
  { name: 'Map+JSON', open: async () => new MapJson() },
]

async function fill(store, group, count) {
  for (let i = 0; i < count; i++) await store.set(group, `k${i}`, order(i))
}

const updateOps = [
  { type: 'increment', path: 'paid', by: 1 },
  { type: 'set', path: 'status', value: 'paid' },
]

function getGroupWorkload(count) {
  const calls = count >= 10_000 ? 20 : 200
  return {
    name: `getGroup of ${count / 1000}k items`,
    unit: 'ms',
    setup: (store) => fill(store, 'orders', count),
    async run(store) {
      for (let i = 0; i < calls; i++) {
        const items = await store.getGroup('orders')
        if (items.length !== count) throw new Error('getGroup returned the wrong count')
      }
      return calls
    },
  }
}

const workloads = [
  {
    name: 'get (awaited, one at a time)',
    setup: (store) => fill(store, 'orders', KEYS),
    async run(store) {
      for (let i = 0; i < SEQUENTIAL_OPS; i++) await store.get('orders', `k${i % KEYS}`)
      return SEQUENTIAL_OPS
    },
  },
  {
    name: 'set (awaited, one at a time)',
    async run(store) {
      const value = order(1)
      for (let i = 0; i < SEQUENTIAL_OPS; i++) await store.set('orders', `k${i % KEYS}`, value)
      return SEQUENTIAL_OPS
    },
  },
  {
    name: 'update (awaited, one at a time)',
    setup: (store) => fill(store, 'orders', KEYS),
    async run(store) {
      for (let i = 0; i < SEQUENTIAL_OPS; i++) await store.update('orders', `k${i % KEYS}`, updateOps)
      return SEQUENTIAL_OPS
    },
  },
  getGroupWorkload(1_000),
  getGroupWorkload(10_000),
  {
    name: '10,000 concurrent increments of one key',
    unit: 'ms',
    async run(store) {
      const ops = [{ type: 'increment', path: 'count', by: 1 }]
      await Promise.all(Array.from({ length: 10_000 }, () => store.update('counters', 'c', ops)))
      const { count } = await store.get('counters', 'c')
      if (count !== 10_000) throw new Error(`lost increments: ${count}`)
      return 1
    },
  },
  {
    name: 'mixed, 64 in flight (50% get, 30% update, 20% set)',
    setup: (store) => fill(store, 'orders', KEYS),
    async run(store) {
      let next = 0
      const worker = async () => {
        while (next < SEQUENTIAL_OPS) {
          const i = next++
          const key = `k${(i * 7919) % KEYS}`
          const kind = i % 10
          if (kind < 5) await store.get('orders', key)
          else if (kind < 8) await store.update('orders', key, updateOps)
          else await store.set('orders', key, order(i))
        }
      }
      await Promise.all(Array.from({ length: 64 }, worker))
      return SEQUENTIAL_OPS
    },
  },
]

async function run() {
  const measurements = []
  for (const workload of workloads) measurements.push(await measure(stores, workload))
  printTable('In-memory store', 'stepstate', measurements)
}

module.exports = { run }
