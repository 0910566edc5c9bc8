'use strict'
// Benchmark harness: runs each workload on every store in the same process, in rounds that
// rotate the store order (so drift and noise hit all stores alike), and reports the median
// across rounds plus the median of the per-round ratios against each reference store.

const ROUNDS = Number(process.env.BENCH_ROUNDS || 5)

/** A ~230-byte order, like a workflow step would store. */
function order(i) {
  return {
    id: `order-${i}`,
    customer: { id: `cust-${i % 97}`, name: 'Ada Lovelace', email: 'ada@example.com' },
    status: 'pending',
    items: [
      { sku: 'sku-1', qty: 2, price: 19.99 },
      { sku: 'sku-2', qty: 1, price: 5.5 },
    ],
    total: 45.48,
    paid: 0,
    createdAt: '2026-11-21T05:00:00.000Z',
  }
}

function median(values) {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 ? sorted[mid] : (sorted[mid - 1] + sorted[mid]) / 2
}

/**
 * Runs `workload.run(store)` for every store, ROUNDS times. `run` returns the number of
 * operations it did (throughput is ops/s) or, with `unit: 'ms'`, is timed per call.
 * Returns { name, unit, results: Map(storeName -> [per-round figures]) }.
 */
async function measure(stores, workload) {
  const results = new Map(stores.map((s) => [s.name, []]))
  for (let round = 0; round < ROUNDS; round++) {
    for (let i = 0; i < stores.length; i++) {
      const entry = stores[(i + round) % stores.length]
      const store = await entry.open()
      try {
        results.get(entry.name).push(await measureOnce(store, workload))
      } finally {
        await store.close()
        if (entry.cleanup) await entry.cleanup()
      }
    }
  }
  return { name: workload.name, unit: workload.unit || 'ops/s', results }
}

/** One figure of `workload` on an open `store`: its setup, then its run, timed. */
async function measureOnce(store, workload) {
  if (workload.setup) await workload.setup(store)
  const start = process.hrtime.bigint()
  const ops = await workload.run(store)
  const seconds = Number(process.hrtime.bigint() - start) / 1e9
  return workload.unit === 'ms' ? (seconds * 1000) / ops : ops / seconds
}

function format(value, unit) {
  if (unit === 'ms') return `${value < 1 ? value.toFixed(3) : value.toFixed(2)} ms`
  return value >= 1e6 ? `${(value / 1e6).toFixed(2)} M/s` : `${Math.round(value / 1e3)}k/s`
}

/**
 * Prints one Markdown table: a row per workload, a column per store (median of rounds), and
 * for the subject store a ratio column per reference (median of per-round ratios; > 1 means
 * the subject is faster, for times as well as throughputs).
 */
function printTable(title, subject, measurements) {
  const stores = [...measurements[0].results.keys()]
  const references = stores.filter((s) => s !== subject)
  const header = ['workload', ...stores, ...references.map((r) => `${subject} ÷ ${r}`)]
  console.log(`\n### ${title}\n`)
  console.log(`| ${header.join(' | ')} |`)
  console.log(`|${header.map(() => '---').join('|')}|`)
  for (const m of measurements) {
    const cells = stores.map((s) => format(median(m.results.get(s)), m.unit))
    const mine = m.results.get(subject)
    const ratios = references.map((r) => {
      const theirs = m.results.get(r)
      const perRound = mine.map((v, i) => (m.unit === 'ms' ? theirs[i] / v : v / theirs[i]))
      return `${median(perRound).toFixed(2)}x`
    })
    console.log(`| ${[m.name, ...cells, ...ratios].join(' | ')} |`)
  }
}

module.exports = { ROUNDS, order, median, measure, measureOnce, printTable }
