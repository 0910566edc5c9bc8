'use strict'
// The Redis suite: stepstate on Redis beside ioredis on the same private redis-server (started
// here on a free loopback port, stopped at the end). ioredis does what a plain Redis state
// adapter does: get is one HGET of the JSON text, set one HSET, and update a Lua script that
// reads the item, applies the ops with cjson and writes it back (one EVALSHA). stepstate does
// more per call: set also returns the old value, keeps the insertion order and records the
// change event in the stream, all in one script; update runs the op engine in Rust and stores
// by compare-and-set. Hot workloads cycle through 1,000 keys, which fit a manager's read cache;
// cold ones go over 100,000 keys in random order, which do not. Then the round trips per call,
// counted with MONITOR (commands a client sent; the commands Lua scripts run inside Redis are
// left out, as are the event reader's XREADs and the TIME that ends each pipeline of
// stepstate's gets, which travels with them).

const { StateManager } = require('..')
const { measure, measureOnce, order, printTable } = require('./harness')
const { COLD_KEYS, updateOps, fillKeys, sequential, concurrent, calls, coldCalls } = require('./workloads')

/** Calls per figure: at 64 in flight even 20,000 take well under a second, and fewer left the
 *  figures of one run to a handful of batches (±10–15% between runs). */
const OPS = Number(process.env.BENCH_REDIS_OPS || 20_000)
/** Calls of each kind the round-trip count makes (the expiry sweep, every 250 ms, adds a
 *  script call now and then: over 1,000 calls it moves the figure by about 0.001). */
const PROBE_CALLS = 1_000

/** The ioredis update: `updateOps` (count a payment, set the status) in Lua with cjson, as a
 *  Redis state adapter written on a plain client does it; returns the new and old JSON. */
const UPDATE_SCRIPT = `
local old = redis.call('HGET', KEYS[1], ARGV[1])
local value = {}
if old then value = cjson.decode(old) end
value.paid = (tonumber(value.paid) or 0) + tonumber(ARGV[2])
value.status = ARGV[3]
local new = cjson.encode(value)
redis.call('HSET', KEYS[1], ARGV[1], new)
return {new, old or false}
`

/** A group is one hash `<prefix>{<group>}`; values are JSON text. */
class IoRedisStore {
  constructor(Redis, port, prefix) {
    this.redis = new Redis({ host: '127.0.0.1', port, lazyConnect: true })
    this.redis.defineCommand('stateUpdate', { numberOfKeys: 1, lua: UPDATE_SCRIPT })
    this.prefix = prefix
  }
  async open() {
    await this.redis.connect()
    return this
  }
  hash(group) {
    return `${this.prefix}{${group}}`
  }
  async get(group, key) {
    const text = await this.redis.hget(this.hash(group), key)
    return text === null ? null : JSON.parse(text)
  }
  async set(group, key, value) {
    await this.redis.hset(this.hash(group), key, JSON.stringify(value))
    return { new_value: value }
  }
  async update(group, key, ops) {
    // This bench's only ops are workloads.updateOps; the script hard-codes their shape.
    const [increment, status] = ops
    const [newText, oldText] = await this.redis.stateUpdate(this.hash(group), key, increment.by, status.value)
    return { new_value: JSON.parse(newText), old_value: oldText === null ? null : JSON.parse(oldText) }
  }
  async close() {
    await this.redis.quit()
  }
}

/** A larger value than the order: a document of 200 line items (11.5 KB of JSON), read again
 *  and again, and written over and over. */
const DOCUMENT = {
  id: 'doc-1',
  items: Array.from({ length: 200 }, (_, i) => ({ sku: `sku-${i}`, qty: i, price: i * 1.25, tags: ['a', 'b'] })),
}

const workloads = [
  sequential('get', OPS, calls.get, fillKeys),
  sequential('set', OPS, calls.set),
  sequential('update', OPS, calls.update, fillKeys),
  concurrent('get', OPS, 64, calls.get, fillKeys),
  concurrent('set', OPS, 64, calls.set),
  concurrent('update', OPS, 64, calls.update, fillKeys),
  concurrent('mixed (50% get, 30% update, 20% set)', OPS, 64, calls.mixed, fillKeys),
  concurrent('get of an 11.5 KB document', OPS, 64, (store) => store.get('docs', 'doc-1'), (store) => store.set('docs', 'doc-1', DOCUMENT)),
  concurrent('set of an 11.5 KB document (100 keys)', OPS, 64, (store, i) => store.set('docs', `doc-${i % 100}`, DOCUMENT)),
]

/**
 * The cold workloads: 100,000 keys, far more than a manager's read cache holds, read and
 * updated in a fixed random order (workloads.coldCalls). Each store writes them once, 64 in
 * flight, under a prefix of its own (`fill`, one timed figure per store); every round then opens
 * the store afresh on them, so no manager starts with anything cached.
 */
const coldFill = concurrent(`cold: set of ${COLD_KEYS / 1000}k distinct keys`, COLD_KEYS, 64, coldCalls.set)
const coldWorkloads = [
  sequential(`cold: get, random over ${COLD_KEYS / 1000}k keys`, OPS, coldCalls.get),
  sequential(`cold: update, random over ${COLD_KEYS / 1000}k keys`, OPS, coldCalls.update),
  concurrent(`cold: get, random over ${COLD_KEYS / 1000}k keys`, OPS, 64, coldCalls.get),
  concurrent(`cold: update, random over ${COLD_KEYS / 1000}k keys`, OPS, 64, coldCalls.update),
  concurrent(`cold: mixed over ${COLD_KEYS / 1000}k keys`, OPS, 64, coldCalls.mixed),
]

/** The cold table: each store's one timed fill, then the rounds of `coldWorkloads`. */
async function measureCold(stores) {
  const fill = { name: `${coldFill.name} (once)`, unit: 'ops/s', results: new Map() }
  for (const entry of stores) {
    const store = await entry.open()
    try {
      fill.results.set(entry.name, [await measureOnce(store, coldFill)])
    } finally {
      await store.close()
    }
  }
  const measurements = [fill]
  for (const workload of coldWorkloads) measurements.push(await measure(stores, workload))
  return measurements
}

/** Commands that are not round trips of a call: the event reader's, the probe's own, and the
 *  `TIME` in the same pipeline as a get's `HGET`s. */
const UNCOUNTED = new Set(['xread', 'info', 'time'])

/**
 * Commands each kind of call sends, as MONITOR sees them: `PROBE_CALLS` calls of each kind,
 * on keys the calling store wrote itself ("known") or another store wrote ("unknown": for
 * stepstate, a manager that has not seen the item's version).
 */
async function roundTrips(Redis, port, stores) {
  const client = new Redis({ host: '127.0.0.1', port })
  const monitor = await client.monitor() // a second connection, in MONITOR mode
  let counting = false
  let sent = 0
  monitor.on('monitor', (_time, args, source) => {
    const command = String(args[0]).toLowerCase()
    if (counting && source !== 'lua' && !UNCOUNTED.has(command)) sent += 1
  })
  const count = async (work) => {
    // MONITOR's feed is asynchronous: a PING from another connection marks the end of `work`.
    const marker = new Redis({ host: '127.0.0.1', port })
    sent = 0
    counting = true
    await work()
    const seenEnd = new Promise((resolve) => {
      const onLine = (_time, args) => {
        if (String(args[0]).toLowerCase() === 'echo' && args[1] === 'end-of-probe') {
          monitor.off('monitor', onLine)
          resolve()
        }
      }
      monitor.on('monitor', onLine)
    })
    await marker.echo('end-of-probe')
    await seenEnd
    counting = false
    await marker.quit()
    return (sent - 1) / PROBE_CALLS // less the ECHO itself
  }
  const rows = []
  for (const entry of stores) {
    const store = await entry.open()
    const other = await entry.open() // a second client/manager on the same prefix
    try {
      for (let i = 0; i < PROBE_CALLS; i++) await store.set('orders', `k${i}`, order(i))
      for (let i = 0; i < PROBE_CALLS; i++) await other.set('orders', `u${i}`, order(i))
      rows.push({
        store: entry.name,
        get: await count(async () => {
          for (let i = 0; i < PROBE_CALLS; i++) await store.get('orders', `k${i}`)
        }),
        set: await count(async () => {
          for (let i = 0; i < PROBE_CALLS; i++) await store.set('orders', `k${i}`, order(i))
        }),
        updateKnown: await count(async () => {
          for (let i = 0; i < PROBE_CALLS; i++) await store.update('orders', `k${i}`, updateOps)
        }),
        updateUnknown: await count(async () => {
          for (let i = 0; i < PROBE_CALLS; i++) await store.update('orders', `u${i}`, updateOps)
        }),
      })
    } finally {
      await store.close()
      await other.close()
      if (entry.cleanup) await entry.cleanup()
    }
  }
  monitor.disconnect()
  await client.quit()
  return rows
}

async function run() {
  const Redis = require('ioredis')
  const { startRedis } = await import('../__test__/helpers/redis-server.mjs')
  const server = await startRedis()
  const admin = new Redis({ host: '127.0.0.1', port: server.port })
  // Each round starts from an empty server, so neither store finds the other's keys.
  const cleanup = () => admin.flushall()
  const stores = [
    {
      name: 'stepstate',
      open: () => StateManager.open({ adapter: 'redis', url: server.url, prefix: 'bench:' }),
      cleanup,
    },
    { name: 'ioredis', open: () => new IoRedisStore(Redis, server.port, 'bench:').open(), cleanup },
  ]
  try {
    const measurements = []
    for (const workload of workloads) measurements.push(await measure(stores, workload))
    printTable(`Redis store (private redis-server ${server.port}, ${OPS} ops per figure)`, 'stepstate', measurements)
    const coldStores = [
      { name: 'stepstate', open: () => StateManager.open({ adapter: 'redis', url: server.url, prefix: 'cold-stepstate:' }) },
      { name: 'ioredis', open: () => new IoRedisStore(Redis, server.port, 'cold-ioredis:').open() },
    ]
    printTable(`Redis store (cold: ${COLD_KEYS.toLocaleString('en')} keys, random order, ${OPS} ops per figure)`, 'stepstate', await measureCold(coldStores))
    await cleanup()
    const rows = await roundTrips(Redis, server.port, stores)
    console.log('\nRound trips per call (commands a client sent, by MONITOR, but a get pipeline\'s TIME; known: the item was last written by this client/manager)\n')
    console.log('| store | get | set | update (known) | update (unknown) |')
    console.log('|---|---|---|---|---|')
    for (const row of rows) {
      const cells = [row.get, row.set, row.updateKnown, row.updateUnknown].map((n) => n.toFixed(2))
      console.log(`| ${row.store} | ${cells.join(' | ')} |`)
    }
  } finally {
    await admin.quit()
    await server.stop()
  }
}

module.exports = { run }
