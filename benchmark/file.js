'use strict'
// The file-store suite: stepstate's file store in each sync mode beside better-sqlite3 (WAL,
// synchronous=NORMAL; update as a read-modify-write transaction), lmdb (awaited durable put)
// and stepstate's own memory store, on awaited and 64-in-flight set/update; then a million
// ~200-byte items: reopen time, disk size and resident memory, measured in fresh processes.

const { execFileSync } = require('node:child_process')
const { mkdtempSync, readdirSync, rmSync, statSync } = require('node:fs')
const { tmpdir } = require('node:os')
const { join } = require('node:path')
const { StateManager } = require('..')
const { SqliteStore, LmdbStore } = require('./durable-stores')
const { measure, median, printTable, ROUNDS } = require('./harness')
const { COLD_KEYS, fillKeys, fillColdKeys, calls, coldCalls } = require('./workloads')

const OPS = Number(process.env.BENCH_OPS || 50_000)
const SECONDS = Number(process.env.BENCH_SECONDS || 2) // cap per measurement (durable stores)
const ITEMS = Number(process.env.BENCH_ITEMS || 1_000_000)

/** A store in a fresh temporary directory, removed after each round. */
function inTempDir(name, make) {
  let dir = null
  return {
    name,
    open: async () => {
      dir = mkdtempSync(join(tmpdir(), 'stepstate-bench-'))
      return make(dir)
    },
    cleanup: async () => rmSync(dir, { recursive: true, force: true }),
  }
}

const stepstateFile = (sync) =>
  inTempDir(`stepstate file (${sync})`, (dir) => StateManager.open({ adapter: 'file', path: dir, sync }))
const memory = { name: 'stepstate memory', open: async () => new StateManager() }
const sqlite = inTempDir('better-sqlite3 (WAL, NORMAL)', (dir) => new SqliteStore(dir))
const lmdb = inTempDir('lmdb (awaited put)', (dir) => new LmdbStore(dir))

/** Like workloads.sequential/concurrent, but stops after SECONDS: durable stores that sync
 *  per write would otherwise take minutes. Throughput is ops done / time taken. */
function timed(name, inFlight, call, setup) {
  return {
    name: inFlight === 1 ? `${name} (awaited, one at a time)` : `${name}, ${inFlight} in flight`,
    setup,
    async run(store) {
      const deadline = process.hrtime.bigint() + BigInt(SECONDS * 1e9)
      let next = 0
      const worker = async () => {
        while (next < OPS && (next % 64 !== 0 || process.hrtime.bigint() < deadline)) await call(store, next++)
      }
      await Promise.all(Array.from({ length: inFlight }, worker))
      return next
    },
  }
}

const writeWorkloads = [
  timed('set', 1, calls.set),
  timed('update', 1, calls.update, fillKeys),
  timed('set', 64, calls.set),
  timed('update', 64, calls.update, fillKeys),
]

async function table(title, subject, stores, workloads) {
  const measurements = []
  for (const workload of workloads) measurements.push(await measure([subject, ...stores], workload))
  printTable(title, subject.name, measurements)
}

function directoryBytes(dir) {
  return readdirSync(dir).reduce((sum, name) => sum + statSync(join(dir, name)).size, 0)
}

/** Writes ITEMS items in a child process, then reopens them in fresh children. */
function recovery() {
  const dir = mkdtempSync(join(tmpdir(), 'stepstate-bench-1m-'))
  try {
    const child = (script) =>
      JSON.parse(execFileSync(process.execPath, [join(__dirname, 'recovery-child.js'), script, dir, String(ITEMS)], { encoding: 'utf8' }))
    const written = child('write')
    const bytes = directoryBytes(dir)
    const opens = Array.from({ length: ROUNDS }, () => child('open'))
    const openMs = median(opens.map((o) => o.openMs))
    const rssMb = median(opens.map((o) => o.rssMb))
    console.log(`\n### ${ITEMS.toLocaleString('en')} items of ~${written.valueBytes} bytes in the file store\n`)
    console.log('| figure | value |')
    console.log('|---|---|')
    console.log(`| write (64 in flight, everysec) | ${Math.round(ITEMS / written.seconds / 1000)}k items/s |`)
    console.log(`| files on disk | ${(bytes / 1e6).toFixed(0)} MB (${readdirSync(dir).filter((n) => n !== 'LOCK').join(', ')}) |`)
    console.log(`| reopen (median of ${ROUNDS} fresh processes) | ${(openMs / 1000).toFixed(2)} s |`)
    console.log(`| resident memory after reopen (median) | ${rssMb.toFixed(0)} MB (a fresh node process with the addon loaded: ${opens[0].baselineRssMb.toFixed(0)} MB) |`)
  } finally {
    rmSync(dir, { recursive: true, force: true })
  }
}

/** The write workloads over 100,000 keys: each set a new key, each update a random one. */
const coldWriteWorkloads = [
  timed('cold: set of distinct keys', 1, coldCalls.set),
  timed('cold: update, random over 100k keys', 1, coldCalls.update, fillColdKeys),
  timed('cold: set of distinct keys', 64, coldCalls.set),
  timed('cold: update, random over 100k keys', 64, coldCalls.update, fillColdKeys),
]

async function run() {
  await table('File store, sync: everysec (hot: 1,000 keys)', stepstateFile('everysec'), [memory, sqlite, lmdb], writeWorkloads)
  await table(
    `File store, sync: everysec (cold: ${COLD_KEYS.toLocaleString('en')} keys, random order)`,
    stepstateFile('everysec'),
    [memory, sqlite],
    coldWriteWorkloads,
  )
  await table('File store, sync: always (durable before the promise resolves)', stepstateFile('always'), [lmdb], [
    timed('set', 1, calls.set),
    timed('set', 64, calls.set),
    timed('update', 64, calls.update, fillKeys),
  ])
  await table('File store, sync: no', stepstateFile('no'), [memory], writeWorkloads.slice(0, 2))
  recovery()
}

module.exports = { run, recovery }
