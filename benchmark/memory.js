'use strict'
// The in-memory suite: stepstate's memory store beside a JS Map + structuredClone and a JS Map
// holding JSON text, on awaited get/set/update of a ~230-byte object, getGroup of 1k and 10k
// items, 10,000 concurrent increments of one key and 64-in-flight mixed traffic.

const { StateManager } = require('..')
const { MapClone, MapJson } = require('./reference-stores')
const { measure, printTable } = require('./harness')
const { COLD_KEYS, fill, fillKeys, fillColdKeys, sequential, concurrent, calls, coldCalls } = require('./workloads')

const OPS = Number(process.env.BENCH_OPS || 50_000)

const stores = [
  { name: 'stepstate', open: async () => new StateManager() },
  { name: 'Map+structuredClone', open: async () => new MapClone() },
  { name: 'Map+JSON', open: async () => new MapJson() },
]

function getGroupWorkload(count) {
  const reads = count >= 10_000 ? 20 : 200
  return {
    name: `getGroup of ${count / 1000}k items`,
    unit: 'ms',
    setup: (store) => fill(store, 'orders', count),
    async run(store) {
      for (let i = 0; i < reads; i++) {
        const items = await store.getGroup('orders')
        if (items.length !== count) throw new Error('getGroup returned the wrong count')
      }
      return reads
    },
  }
}

const workloads = [
  sequential('get', OPS, calls.get, fillKeys),
  sequential('set', OPS, calls.set),
  sequential('update', OPS, calls.update, fillKeys),
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
  concurrent('mixed (50% get, 30% update, 20% set)', OPS, 64, calls.mixed, fillKeys),
]

/** The same calls over 100,000 distinct keys in random order (see workloads.coldCalls). */
const coldWorkloads = [
  sequential('cold: set of 100k distinct keys', COLD_KEYS, coldCalls.set),
  sequential('cold: get, random over 100k keys', COLD_KEYS, coldCalls.get, fillColdKeys),
  sequential('cold: update, random over 100k keys', COLD_KEYS, coldCalls.update, fillColdKeys),
  concurrent('cold: mixed over 100k keys', COLD_KEYS, 64, coldCalls.mixed, fillColdKeys),
]

async function run() {
  const measurements = []
  for (const workload of workloads) measurements.push(await measure(stores, workload))
  printTable('In-memory store (hot: 1,000 keys)', 'stepstate', measurements)
  const cold = []
  for (const workload of coldWorkloads) cold.push(await measure(stores, workload))
  printTable(`In-memory store (cold: ${COLD_KEYS.toLocaleString('en')} keys, random order)`, 'stepstate', cold)
}

module.exports = { run }
