// The Redis adapter against real redis-server processes and real Node processes: atomicity
// across processes, change events across processes and across killed connections, expiry seen
// by every process once, a server that dies (SIGKILL) or stops answering (SIGSTOP) and comes
// back, ACL credentials and databases, and calls made before the connection is up. Every test
// starts its own redis-server on a free loopback port (never 6379) and stops it by pid; the
// other processes run helpers/redis-child.cjs. The conformance specs (methods, update, events,
// ...) run on Redis separately, with STEPSTATE_TEST_ADAPTER=redis; this file needs no such
// variable. Without redis-server it is skipped loudly, which fails the run under CI.
import { type ChildProcess, execFileSync, fork, spawn, spawnSync } from 'node:child_process'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createConnection, createServer } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest'
import { StateManager } from '../index.js'
import { closeManagers, freshPrefix, track } from './helpers/managers'
import { startRedis } from './helpers/redis-server.mjs'
import { waitFor } from './helpers/wait-for'

type Redis = Awaited<ReturnType<typeof startRedis>>
type ChangeEvent = {
  type: string
  event_type: 'state:created' | 'state:updated' | 'state:deleted'
  group_id: string
  item_id: string
  old_value: any
  new_value: any
  reason?: string
}

const hasRedis =
  spawnSync('redis-server', ['--version']).status === 0 && spawnSync('redis-cli', ['--version']).status === 0
if (!hasRedis) {
  // Loud, and a failure under CI (helpers/no-skips-reporter.mjs): these tests prove nothing skipped.
  console.warn('redis.spec.ts: no redis-server/redis-cli on PATH, so the Redis tests are SKIPPED (install redis-server)')
}

const hasOpenssl = spawnSync('openssl', ['version']).status === 0
if (!hasOpenssl) {
  // Loud, and a failure under CI, as above.
  console.warn('redis.spec.ts: no openssl on PATH, so the rediss:// test is SKIPPED (install openssl)')
}

const childScript = join(__dirname, 'helpers', 'redis-child.cjs')

/** A Node process running helpers/redis-child.cjs: `call` runs one of its commands; `events`
 *  collects the change events its listeners saw, with their arrival times. */
class Child {
  readonly events: Array<{ event: ChangeEvent; at: number }> = []
  private readonly pending = new Map<number, { resolve: (value: any) => void; reject: (err: Error) => void }>()
  private nextId = 0

  constructor(readonly process: ChildProcess) {
    process.on('message', (message: any) => {
      if (message.event !== undefined) {
        this.events.push({ event: message.event, at: message.at })
        return
      }
      const waiting = this.pending.get(message.id)
      if (waiting === undefined) return
      this.pending.delete(message.id)
      if (message.error !== undefined) {
        waiting.reject(Object.assign(new Error(message.error.message), { code: message.error.code }))
      } else {
        waiting.resolve(message.result)
      }
    })
    process.on('exit', (code, signal) => {
      for (const waiting of this.pending.values()) waiting.reject(new Error(`child exited (${code ?? signal})`))
      this.pending.clear()
    })
  }

  call(command: string, args?: unknown): Promise<any> {
    this.nextId += 1
    const id = this.nextId
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject })
      this.process.send({ id, command, args })
    })
  }

  /** The events seen so far, without their arrival times. */
  changes(): ChangeEvent[] {
    return this.events.map(({ event }) => event)
  }
}

const children: Child[] = []
const servers: Redis[] = []

async function startChild(): Promise<Child> {
  // No execArgv: the test runner's loader flags are not for this plain CommonJS process.
  const processHandle = fork(childScript, [], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] })
  const child = new Child(processHandle)
  children.push(child)
  await new Promise<void>((resolve, reject) => {
    processHandle.once('error', reject)
    processHandle.once('exit', (code) => reject(new Error(`redis-child exited with ${code} before it was ready`)))
    processHandle.once('message', () => resolve())
  })
  return child
}

async function startServer(): Promise<Redis> {
  const redis = await startRedis()
  servers.push(redis)
  return redis
}

/** A redis-server on `port` (one that was stopped), as helpers/redis-server.mjs starts them. */
async function restartServer(port: number): Promise<Redis> {
  const child = spawn('redis-server', ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no'], {
    stdio: 'ignore',
  })
  child.once('error', () => {})
  const exited = new Promise((resolve) => child.once('exit', resolve))
  const redis: Redis = {
    port,
    pid: child.pid as number,
    url: `redis://127.0.0.1:${port}`,
    async stop() {
      if (child.exitCode === null) child.kill('SIGKILL')
      await exited
    },
  }
  servers.push(redis)
  await waitFor(() => cliAnswers(port), 10_000, `redis-server to answer on port ${port}`, 20)
  return redis
}

function cliAnswers(port: number): boolean {
  return spawnSync('redis-cli', ['-p', String(port), 'PING'], { encoding: 'utf8' }).stdout?.trim() === 'PONG'
}

/** A free loopback port. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as { port: number }
      server.close(() => resolve(port))
    })
  })
}

/** Whether something accepts connections on `port`. */
function listens(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: '127.0.0.1', port }, () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}

/** Runs one command with redis-cli on the server at `port`; returns its output. */
function cli(port: number, ...args: string[]): string {
  return execFileSync('redis-cli', ['-p', String(port), ...args], { encoding: 'utf8' }).trim()
}

/** The ids of the connections now blocked in (or last used for) XREAD: the event readers. */
function eventReaderIds(port: number): string[] {
  return cli(port, 'CLIENT', 'LIST')
    .split('\n')
    .filter((line) => / cmd=xread /.test(line))
    .map((line) => /^id=(\d+) /.exec(line)?.[1] as string)
}

/** Rejects unless `promise` rejects; resolves with the error and how long it took. */
async function rejection(promise: Promise<unknown>): Promise<{ err: any; ms: number }> {
  const started = Date.now()
  try {
    await promise
  } catch (err) {
    return { err, ms: Date.now() - started }
  }
  throw new Error('expected the call to reject, but it resolved')
}

afterEach(async () => {
  await closeManagers()
  for (const child of children.splice(0)) {
    if (child.process.exitCode === null && child.process.signalCode === null) {
      const exited = new Promise((resolve) => child.process.once('exit', resolve))
      child.process.kill('SIGKILL')
      await exited
    }
  }
  for (const server of servers.splice(0)) await server.stop()
})

/** Checks that `events` of one key are the change events of the writes described by the
 *  consecutive `values` (`null`: deleted): created, then updated, with the previous value as
 *  `old_value`, in that order, each once. */
function expectChain(events: ChangeEvent[], group: string, key: string, values: unknown[]): void {
  expect(events).toHaveLength(values.length)
  let previous: unknown = null
  events.forEach((event, index) => {
    const value = values[index]
    const eventType = value === null ? 'state:deleted' : previous === null ? 'state:created' : 'state:updated'
    // Exactly the SPEC's shape: no other fields, no reason on ordinary writes.
    expect(event).toStrictEqual({
      type: 'state',
      event_type: eventType,
      group_id: group,
      item_id: key,
      old_value: previous,
      new_value: value,
    })
    previous = value
  })
}

function byKey(events: ChangeEvent[]): Map<string, ChangeEvent[]> {
  const keys = new Map<string, ChangeEvent[]>()
  for (const event of events) {
    const list = keys.get(event.item_id) ?? []
    list.push(event)
    keys.set(event.item_id, list)
  }
  return keys
}

describe.skipIf(!hasRedis)('Redis adapter across real processes', () => {
  let shared: Redis

  beforeAll(async () => {
    shared = await startRedis()
  })

  afterAll(async () => {
    await shared?.stop()
  })

  describe('atomicity across processes', () => {
    it('4 processes x 2,500 increments of one key give exactly 10,000, each seen once in order', async () => {
      const prefix = freshPrefix()
      const observer = track(await StateManager.open({ adapter: 'redis', url: shared.url, prefix }))
      const seen: ChangeEvent[] = []
      observer.onChange((event) => void seen.push(event), { group: 'counters' })
      const workers = await Promise.all([1, 2, 3, 4].map(() => startChild()))
      await Promise.all(workers.map((worker) => worker.call('open', { adapter: 'redis', url: shared.url, prefix })))
      const counts: number[][] = await Promise.all(
        workers.map((worker) => worker.call('increments', { group: 'counters', key: 'hits', count: 2_500, inFlight: 8 })),
      )
      expect(await observer.get('counters', 'hits')).toEqual({ count: 10_000 })
      // Every update saw a distinct predecessor: together they produced each count once.
      expect(counts.flat().sort((a, b) => a - b)).toEqual(Array.from({ length: 10_000 }, (_, i) => i + 1))
      for (const own of counts) expect(own).toHaveLength(2_500)
      // A third process heard every one of them, in commit order.
      await waitFor(() => seen.length >= 10_000, 20_000, 'the 10,000 change events')
      expectChain(
        seen,
        'counters',
        'hits',
        Array.from({ length: 10_000 }, (_, i) => ({ count: i + 1 })),
      )
    }, 120_000)

    it('set and delete racing across 4 processes return consistent old values, and the last write stays', async () => {
      const prefix = freshPrefix()
      const group = 'race'
      const keys = ['a', 'b', 'c']
      const observer = track(await StateManager.open({ adapter: 'redis', url: shared.url, prefix }))
      const seen: ChangeEvent[] = []
      observer.onChange((event) => void seen.push(event), { group })
      const workers = await Promise.all([1, 2, 3, 4].map(() => startChild()))
      await Promise.all(workers.map((worker) => worker.call('open', { adapter: 'redis', url: shared.url, prefix })))
      type Record = { op: 'set' | 'delete'; key: string; value?: string; old: string | null }
      const records: Record[] = (
        await Promise.all(
          workers.map((worker, index) =>
            worker.call('setDeleteRace', { group, keys, rounds: 1_500, inFlight: 4, tag: `p${index}`, seed: 17 + index }),
          ),
        )
      ).flat()
      expect(records).toHaveLength(6_000)

      for (const key of keys) {
        const mine = records.filter((record) => record.key === key)
        const written = new Set(mine.filter((record) => record.op === 'set').map((record) => record.value))
        const replaced = new Set<string>()
        for (const record of mine) {
          if (record.old === null) continue
          // Every value a set replaced or a delete removed was written by someone, to this key...
          expect(written.has(record.old), `${key}: ${record.op} returned ${record.old}, which no one wrote`).toBe(true)
          // ... and no value is replaced or removed twice.
          expect(replaced.has(record.old), `${key}: ${record.old} was returned as replaced/removed twice`).toBe(false)
          replaced.add(record.old)
        }
        // The values never replaced nor removed: at most one, and it is what the store holds.
        const survivors = [...written].filter((value) => !replaced.has(value))
        const final = await observer.get(group, key)
        expect(survivors).toEqual(final === null ? [] : [final])
        // Each item's lifetime starts with a set onto nothing and ends with a delete that got it.
        const created = mine.filter((record) => record.op === 'set' && record.old === null).length
        const removed = mine.filter((record) => record.op === 'delete' && record.old !== null).length
        expect(created).toBe(removed + (final === null ? 0 : 1))
      }

      // The events of each key tell the same history, in commit order, each write once.
      const committed = records.filter((record) => record.op === 'set' || record.old !== null).length
      await waitFor(() => seen.length >= committed, 20_000, `the ${committed} change events`)
      const events = byKey(seen)
      for (const key of keys) {
        const history = events.get(key) ?? []
        let previous: string | null = null
        for (const event of history) {
          expect(event.old_value).toBe(previous)
          previous = event.new_value
        }
        expect(previous).toBe(await observer.get(group, key))
        const mine = records.filter((record) => record.key === key && (record.op === 'set' || record.old !== null))
        expect(history).toHaveLength(mine.length)
        // Each call's own reply matches the event of its commit.
        const eventOf = new Map(history.map((event) => [`${event.new_value}<-${event.old_value}`, event]))
        for (const record of mine) {
          const signature = record.op === 'set' ? `${record.value}<-${record.old}` : `null<-${record.old}`
          expect(eventOf.has(signature), `${key}: no event for ${record.op} ${signature}`).toBe(true)
        }
      }
    }, 120_000)
  })

  describe('change events across processes', () => {
    it('a listener in one process sees every change another process makes, once, per key in commit order', async () => {
      const prefix = freshPrefix()
      const [listener, writer] = await Promise.all([startChild(), startChild()])
      await Promise.all([listener, writer].map((child) => child.call('open', { adapter: 'redis', url: shared.url, prefix })))
      await listener.call('listen', { group: 'flow' })
      const keys = Array.from({ length: 10 }, (_, i) => `k${i}`)
      const perKey = 50
      expect(await writer.call('updateSequence', { group: 'flow', keys, perKey })).toBe(0)
      const expected = keys.length * (perKey + 1)
      await waitFor(() => listener.events.length >= expected, 20_000, `${expected} events in the listening process`)
      // Nothing more arrives (a duplicate would come right behind).
      await new Promise((resolve) => setTimeout(resolve, 300))
      const events = byKey(listener.changes())
      expect([...events.keys()].sort()).toEqual([...keys].sort())
      const values = [...Array.from({ length: perKey }, (_, i) => ({ n: i + 1 })), null]
      for (const key of keys) expectChain(events.get(key) ?? [], 'flow', key, values)
    }, 60_000)

    it('event readers killed with CLIENT KILL ID while another process writes lose nothing and repeat nothing', async () => {
      const prefix = freshPrefix()
      const [listener, writer] = await Promise.all([startChild(), startChild()])
      await Promise.all([listener, writer].map((child) => child.call('open', { adapter: 'redis', url: shared.url, prefix })))
      await listener.call('listen', { group: 'flow' })
      const keys = Array.from({ length: 10 }, (_, i) => `k${i}`)
      const perKey = 150
      // About 2 s of writes (10 ms between the writes of a key), so that the kills fall among them.
      let writingDone = false
      const writing = writer.call('updateSequence', { group: 'flow', keys, perKey, pauseMs: 10 })
      writing.then(() => (writingDone = true), () => (writingDone = true))
      const killed = new Set<string>()
      let killsWhileWriting = 0
      for (let round = 1; round <= 5; round++) {
        // Each round kills the readers that reconnected since the last one (the listener's and
        // the writer's own), once the listener has heard more events.
        const heard = listener.events.length
        await waitFor(() => listener.events.length > heard, 20_000, `events before kill ${round}`)
        await waitFor(
          () => eventReaderIds(shared.port).some((id) => !killed.has(id)),
          10_000,
          `a new event reader before kill ${round}`,
        )
        for (const id of eventReaderIds(shared.port).filter((id) => !killed.has(id))) {
          killed.add(id)
          if (cli(shared.port, 'CLIENT', 'KILL', 'ID', id) === '1' && !writingDone) killsWhileWriting += 1
        }
      }
      expect(killsWhileWriting).toBeGreaterThanOrEqual(5)
      expect(await writing).toBe(0) // the writer's own command connection was not touched
      const expected = keys.length * (perKey + 1)
      await waitFor(() => listener.events.length >= expected, 20_000, `${expected} events in the listening process`)
      await new Promise((resolve) => setTimeout(resolve, 500))
      const events = byKey(listener.changes())
      const values = [...Array.from({ length: perKey }, (_, i) => ({ n: i + 1 })), null]
      for (const key of keys) expectChain(events.get(key) ?? [], 'flow', key, values)
    }, 90_000)

    it('every connection killed with CLIENT KILL TYPE normal while another process writes: each committed change heard once', async () => {
      const prefix = freshPrefix()
      const [listener, writer] = await Promise.all([startChild(), startChild()])
      await Promise.all([listener, writer].map((child) => child.call('open', { adapter: 'redis', url: shared.url, prefix })))
      await listener.call('listen', { group: 'flow' })
      const keys = Array.from({ length: 10 }, (_, i) => `k${i}`)
      const perKey = 150
      // The writer retries a call that failed with the connection only when the store shows it
      // was not committed, so each value below is committed exactly once.
      let writingDone = false
      const writing = writer.call('updateSequence', { group: 'flow', keys, perKey, pauseMs: 10 })
      writing.then(() => (writingDone = true), () => (writingDone = true))
      let killed = 0
      for (let round = 1; round <= 5; round++) {
        const heard = listener.events.length
        await waitFor(() => listener.events.length > heard, 20_000, `events before kill ${round}`)
        if (!writingDone) killed += Number(cli(shared.port, 'CLIENT', 'KILL', 'TYPE', 'normal'))
        // Until both processes are connected again (the command connections of both and the
        // listener's event connection: a process reads events only once it listens; redis-cli
        // is the fourth client).
        await waitFor(() => Number(cli(shared.port, 'INFO', 'clients').match(/connected_clients:(\d+)/)?.[1]) >= 4, 10_000, 'the reconnections')
      }
      // The command connections of both processes and the listener's event connection went,
      // while the writes went on.
      expect(killed).toBeGreaterThanOrEqual(5 * 2)
      // A write in flight when its connection went failed (BACKEND_UNAVAILABLE), and the writer
      // retried it only if the store showed it had not been committed.
      await writing
      const expected = keys.length * (perKey + 1)
      await waitFor(() => listener.events.length >= expected, 30_000, `${expected} events in the listening process`)
      await new Promise((resolve) => setTimeout(resolve, 500))
      const events = byKey(listener.changes())
      const values = [...Array.from({ length: perKey }, (_, i) => ({ n: i + 1 })), null]
      for (const key of keys) expectChain(events.get(key) ?? [], 'flow', key, values)
    }, 90_000)
  })

  describe('expiry seen from two processes', () => {
    it('each process hears exactly one expired deletion, within about a second of the expiry', async () => {
      const prefix = freshPrefix()
      const [a, b] = await Promise.all([startChild(), startChild()])
      await Promise.all([a, b].map((child) => child.call('open', { adapter: 'redis', url: shared.url, prefix })))
      await Promise.all([a, b].map((child) => child.call('listen', { group: 'sessions' })))
      const setAt = Date.now()
      await a.call('set', { group: 'sessions', key: 's1', value: { user: 'ada' }, opts: { ttl: 1 } })
      const expiresAt = setAt + 1_000
      const deletions = (child: Child) => child.events.filter(({ event }) => event.event_type === 'state:deleted')
      await waitFor(() => deletions(a).length >= 1 && deletions(b).length >= 1, 10_000, 'the expiry event in both processes')
      // A second sweep by the other process (every 250 ms each) must not announce it again.
      await new Promise((resolve) => setTimeout(resolve, 1_000))
      for (const child of [a, b]) {
        expect(child.changes()).toStrictEqual([
          {
            type: 'state',
            event_type: 'state:created',
            group_id: 'sessions',
            item_id: 's1',
            old_value: null,
            new_value: { user: 'ada' },
          },
          {
            type: 'state',
            event_type: 'state:deleted',
            group_id: 'sessions',
            item_id: 's1',
            old_value: { user: 'ada' },
            new_value: null,
            reason: 'expired',
          },
        ])
        const { at } = deletions(child)[0]
        expect(at).toBeGreaterThanOrEqual(expiresAt - 50)
        expect(at - expiresAt).toBeLessThan(2_000)
      }
      expect(await a.call('get', { group: 'sessions', key: 's1' })).toBeNull()
    }, 30_000)
  })

  describe('a server that dies and comes back', () => {
    it('calls reject with BACKEND_UNAVAILABLE in bounded time, close returns at once, and the manager works again after a restart', async () => {
      const redis = await startServer()
      const options = { adapter: 'redis' as const, url: redis.url, prefix: freshPrefix(), commandTimeout: 1_000 }
      const state = track(await StateManager.open(options))
      const other = track(await StateManager.open(options))
      const seen: ChangeEvent[] = []
      state.onChange((event) => void seen.push(event))
      await state.set('jobs', 'j1', { step: 1 })
      expect(await other.get('jobs', 'j1')).toEqual({ step: 1 })

      await redis.stop() // SIGKILL
      const calls: Array<[string, () => Promise<unknown>]> = [
        ['get', () => state.get('jobs', 'j1')],
        ['set', () => state.set('jobs', 'j2', { step: 1 })],
        ['update', () => state.update('jobs', 'j1', [{ type: 'increment', path: 'step', by: 1 }])],
        ['delete', () => state.delete('jobs', 'j1')],
        ['entries', () => state.entries('jobs')],
        ['listGroups', () => state.listGroups()],
      ]
      for (const [name, call] of calls) {
        const { err, ms } = await rejection(call())
        expect(err.code, `${name}: ${err.message}`).toBe('BACKEND_UNAVAILABLE')
        expect(ms, `${name} took ${ms} ms to fail`).toBeLessThan(3_000)
      }
      // Several at once fail the same way, in the same bound.
      const together = await rejection(Promise.all([1, 2, 3, 4].map((i) => state.get('jobs', `j${i}`))))
      expect(together.err.code).toBe('BACKEND_UNAVAILABLE')
      expect(together.ms).toBeLessThan(3_000)

      // Opening against the dead port fails the same way, with open() and through a queued call.
      const opening = await rejection(StateManager.open(options))
      expect(opening.err.code).toBe('BACKEND_UNAVAILABLE')
      expect(opening.ms).toBeLessThan(3_000)
      const queued = await rejection(track(new StateManager(options)).get('jobs', 'j1'))
      expect(queued.err.code).toBe('BACKEND_UNAVAILABLE')
      expect(queued.ms).toBeLessThan(3_000)

      // close() while Redis is down returns at once; the manager is closed.
      const closeStarted = Date.now()
      await other.close()
      expect(Date.now() - closeStarted).toBeLessThan(500)
      expect((await rejection(other.get('jobs', 'j1'))).err.code).toBe('CLOSED')

      // Back on the same port (empty: this server keeps nothing on disk): the same manager
      // reconnects by itself, and its listener hears the new writes.
      await restartServer(redis.port)
      await waitFor(
        async () => {
          try {
            await state.set('jobs', 'j3', { step: 3 })
            return true
          } catch {
            return false
          }
        },
        15_000,
        'the manager to write again after the restart',
        100,
      )
      expect(await state.get('jobs', 'j3')).toEqual({ step: 3 })
      expect(await state.update('jobs', 'j3', [{ type: 'increment', path: 'step', by: 1 }])).toEqual({
        new_value: { step: 4 },
        old_value: { step: 3 },
      })
      expect(await state.keys('jobs')).toEqual(['j3'])
      await waitFor(
        () => seen.some((event) => event.item_id === 'j3' && event.new_value?.step === 4),
        10_000,
        'the listener to hear a write made after the restart',
      )
    }, 60_000)

    it('a server that stops answering (SIGSTOP) makes calls reject after commandTimeout, and they work again once it resumes', async () => {
      const redis = await startServer()
      const options = { adapter: 'redis' as const, url: redis.url, prefix: freshPrefix(), commandTimeout: 1_000 }
      const state = track(await StateManager.open(options))
      await state.set('jobs', 'j1', { step: 1 })
      process.kill(redis.pid, 'SIGSTOP')
      try {
        // The connection stays open and silent: only commandTimeout ends the wait.
        for (const [name, call] of [
          ['get', () => state.get('jobs', 'j1')],
          ['update', () => state.update('jobs', 'j2', [{ type: 'increment', path: 'step', by: 1 }])],
          ['open', () => StateManager.open(options)],
        ] as Array<[string, () => Promise<unknown>]>) {
          const { err, ms } = await rejection(call())
          expect(err.code, `${name}: ${err.message}`).toBe('BACKEND_UNAVAILABLE')
          expect(ms, `${name} failed after ${ms} ms`).toBeGreaterThanOrEqual(900)
          expect(ms, `${name} took ${ms} ms to fail`).toBeLessThan(3_000)
        }
        // A manager still connecting closes once its open has ended: within commandTimeout.
        const closeStarted = Date.now()
        await track(new StateManager(options)).close()
        expect(Date.now() - closeStarted).toBeLessThan(3_000)
      } finally {
        process.kill(redis.pid, 'SIGCONT')
      }
      await waitFor(
        async () => {
          try {
            return (await state.update('jobs', 'j1', [{ type: 'set', path: 'step', value: 5 }])).new_value.step === 5
          } catch {
            return false
          }
        },
        15_000,
        'the manager to write again once the server resumed',
        100,
      )
      expect(await state.get('jobs', 'j1')).toEqual({ step: 5 })
    }, 60_000)
  })

  describe('credentials and database', () => {
    it('opens with user and password in the url or as options; a wrong password says authentication failed', async () => {
      const redis = await startServer()
      expect(cli(redis.port, 'ACL', 'SETUSER', 'app', 'on', '>secret', '~*', '&*', '+@all')).toBe('OK')
      const prefix = freshPrefix()
      const byUrl = track(
        await StateManager.open({ adapter: 'redis', url: `redis://app:secret@127.0.0.1:${redis.port}`, prefix }),
      )
      await byUrl.set('users', 'u1', { name: 'Ada' })
      const byOptions = track(
        await StateManager.open({
          adapter: 'redis',
          host: '127.0.0.1',
          port: redis.port,
          username: 'app',
          password: 'secret',
          prefix,
        }),
      )
      expect(await byOptions.get('users', 'u1')).toEqual({ name: 'Ada' })
      // Both really are the `app` user.
      expect(cli(redis.port, 'CLIENT', 'LIST')).toMatch(/ user=app /)

      const wrong = [
        { adapter: 'redis' as const, url: `redis://app:not-the-secret@127.0.0.1:${redis.port}`, prefix },
        { adapter: 'redis' as const, host: '127.0.0.1', port: redis.port, username: 'app', password: 'not-the-secret', prefix },
        { adapter: 'redis' as const, host: '127.0.0.1', port: redis.port, username: 'nobody', password: 'secret', prefix },
      ]
      for (const options of wrong) {
        const { err, ms } = await rejection(StateManager.open({ ...options, commandTimeout: 2_000 }))
        expect(err.code).toBe('BACKEND_UNAVAILABLE')
        expect(err.message).toMatch(/authentication failed/i)
        expect(err.message).not.toContain('not-the-secret')
        expect(ms).toBeLessThan(3_000)
      }
    }, 30_000)

    it('db in the url or as an option selects the database the store lives in', async () => {
      const prefix = freshPrefix()
      const byUrl = track(await StateManager.open({ adapter: 'redis', url: `${shared.url}/3`, prefix }))
      await byUrl.set('users', 'u1', { name: 'Ada' })
      const byOption = track(await StateManager.open({ adapter: 'redis', host: '127.0.0.1', port: shared.port, db: 3, prefix }))
      expect(await byOption.get('users', 'u1')).toEqual({ name: 'Ada' })
      const inDefault = track(await StateManager.open({ adapter: 'redis', url: shared.url, prefix }))
      expect(await inDefault.get('users', 'u1')).toBeNull()
      expect(cli(shared.port, '-n', '3', '--scan', '--pattern', `${prefix}*`)).toContain(`${prefix}{users}:i`)
      expect(cli(shared.port, '-n', '0', '--scan', '--pattern', `${prefix}*`)).toBe('')
    })
  })

  describe('TLS', () => {
    // A private redis-server on TLS only, with a certificate authority made for the test.
    it.skipIf(!hasOpenssl)('rediss:// with a certificate authority of ones own (string, Buffer or Uint8Array), and one it does not trust refused', async () => {
      const folder = mkdtempSync(join(tmpdir(), 'stepstate-tls-'))
      const openssl = (...args: string[]) => execFileSync('openssl', args, { cwd: folder, stdio: 'ignore' })
      openssl('req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '2', '-subj', '/CN=stepstate test CA', '-keyout', 'ca.key', '-out', 'ca.pem')
      openssl('req', '-newkey', 'rsa:2048', '-nodes', '-subj', '/CN=localhost', '-keyout', 'server.key', '-out', 'server.csr')
      writeFileSync(join(folder, 'san.ext'), 'subjectAltName=DNS:localhost,IP:127.0.0.1\n')
      openssl('x509', '-req', '-in', 'server.csr', '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-days', '2', '-extfile', 'san.ext', '-out', 'server.pem')
      const port = await freePort()
      const child = spawn(
        'redis-server',
        ['--port', '0', '--tls-port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
          '--tls-cert-file', join(folder, 'server.pem'), '--tls-key-file', join(folder, 'server.key'),
          '--tls-ca-cert-file', join(folder, 'ca.pem'), '--tls-auth-clients', 'no',
          '--user', 'default', 'off', '--user', 'step', 'on', '>s3cret', '~*', '&*', '+@all'],
        { stdio: 'ignore' },
      )
      child.once('error', () => {})
      const exited = new Promise((resolve) => child.once('exit', resolve))
      servers.push({ port, pid: child.pid as number, url: `rediss://127.0.0.1:${port}`, async stop() {
        if (child.exitCode === null) child.kill('SIGKILL')
        await exited
      } })
      await waitFor(() => listens(port), 10_000, `the TLS redis-server on port ${port}`, 20)
      try {
        const ca = readFileSync(join(folder, 'ca.pem'), 'utf8')
        const prefix = freshPrefix()
        const byOptions = track(
          await StateManager.open({ adapter: 'redis', host: '127.0.0.1', port, username: 'step', password: 's3cret', tls: { ca }, prefix }),
        )
        await byOptions.set('g', 'k', { secure: true })
        for (const authority of [Buffer.from(ca), new TextEncoder().encode(ca)]) {
          const byUrl = track(
            await StateManager.open({ adapter: 'redis', url: `rediss://step:s3cret@127.0.0.1:${port}`, tls: { ca: authority }, prefix }),
          )
          expect(await byUrl.get('g', 'k')).toEqual({ secure: true })
        }
        // Without the authority, the server's certificate is not trusted.
        const { err } = await rejection(
          StateManager.open({ adapter: 'redis', url: `rediss://step:s3cret@127.0.0.1:${port}`, prefix, commandTimeout: 2_000 }),
        )
        expect(err.code).toBe('BACKEND_UNAVAILABLE')
        await expect(
          StateManager.open({ adapter: 'redis', url: `rediss://127.0.0.1:${port}`, tls: { ca: 42 }, prefix } as any),
        ).rejects.toMatchObject({ code: 'INVALID_ARGUMENT' })
      } finally {
        rmSync(folder, { recursive: true, force: true })
      }
    }, 30_000)
  })

  // Defects these tests found, kept as tests of their fixes.
  describe('connections and versions', () => {
    // The event reader's connection must wait for a reply longer than its `XREAD BLOCK`:
    // otherwise, with no events to read, the client gives up first, takes it for a dropped
    // connection and connects anew, about every 0.6 s per process.
    it('an idle listener keeps its event connection instead of reconnecting every XREAD', async () => {
      const redis = await startServer()
      const state = track(await StateManager.open({ adapter: 'redis', url: redis.url, prefix: freshPrefix() }))
      state.onChange(() => {})
      const connections = () => Number(/total_connections_received:(\d+)/.exec(cli(redis.port, 'INFO', 'stats'))?.[1])
      await waitFor(() => eventReaderIds(redis.port).length === 1, 5_000, 'the event reader')
      const before = connections()
      await new Promise((resolve) => setTimeout(resolve, 3_000))
      // The one connection of the second `INFO` itself, at most.
      expect(connections() - before).toBeLessThanOrEqual(1)
    }, 20_000)

    // Versions come from a per-group counter in Redis, and a manager remembers the version and
    // value it last saw to update in one round trip. When Redis loses its data (a restart
    // without persistence, a failover to a replica that lagged, FLUSHALL), a counter that
    // started again at 1 would reuse versions, and a compare-and-set would match another value
    // that happens to have the remembered version; a new counter starts at a random offset.
    it('an update after Redis lost its data never computes from a value that is no longer there', async () => {
      const redis = await startServer()
      const prefix = freshPrefix()
      const a = track(await StateManager.open({ adapter: 'redis', url: redis.url, prefix }))
      const b = track(await StateManager.open({ adapter: 'redis', url: redis.url, prefix }))
      await a.set('counters', 'c', { n: 0 }) // version 1, remembered by a
      expect(cli(redis.port, 'FLUSHALL')).toBe('OK')
      await b.set('counters', 'c', { n: 100 }) // version 1 again, another value
      const result = await a.update('counters', 'c', [{ type: 'increment', path: 'n', by: 1 }])
      expect(result).toEqual({ new_value: { n: 101 }, old_value: { n: 100 } })
      expect(await b.get('counters', 'c')).toEqual({ n: 101 })
    }, 20_000)

    // The calls a turn of JavaScript starts go to the runtime together at the end of the turn;
    // a close() in the same turn hands them over first, so none is left waiting forever.
    it('calls started in the same turn as close() each settle, with their answer or CLOSED', async () => {
      const state = await StateManager.open({ adapter: 'redis', url: shared.url, prefix: freshPrefix() })
      await state.set('g', 'a', { n: 1 })
      const calls: Array<[string, Promise<unknown>, unknown]> = [
        ['set', state.set('g', 'b', { n: 2 }), { new_value: { n: 2 }, old_value: null }],
        ['get', state.get('g', 'a'), { n: 1 }],
        ['update', state.update('g', 'a', [{ type: 'increment', path: 'n', by: 1 }]), { new_value: { n: 2 }, old_value: { n: 1 } }],
        ['delete', state.delete('g', 'a'), { n: 1 }],
      ]
      await state.close()
      const settled = await Promise.race([
        Promise.allSettled(calls.map(([, call]) => call)),
        new Promise((resolve) => setTimeout(() => resolve('still waiting'), 5_000)),
      ])
      expect(settled).not.toBe('still waiting')
      for (const [i, outcome] of (settled as PromiseSettledResult<unknown>[]).entries()) {
        const [name, , answer] = calls[i]
        if (outcome.status === 'rejected') expect((outcome.reason as { code: string }).code, name).toBe('CLOSED')
        else if (name !== 'delete') expect(outcome.value, name).toEqual(answer)
      }
      await expect(state.get('g', 'a')).rejects.toMatchObject({ code: 'CLOSED' })
    }, 20_000)
  })

  describe('the event stream', () => {
    // Each event holds the old and the new value: with large values the stream's default
    // 100,000 events take much of Redis's memory, and eventsKept makes it fewer.
    it('keeps about eventsKept events, and every event with the default', async () => {
      const kept = freshPrefix()
      const all = freshPrefix()
      const few = track(await StateManager.open({ adapter: 'redis', url: shared.url, prefix: kept, eventsKept: 50 }))
      const many = track(await StateManager.open({ adapter: 'redis', url: shared.url, prefix: all }))
      for (const state of [few, many]) {
        await Promise.all(Array.from({ length: 2_000 }, (_, i) => state.set('g', `k${i % 100}`, { i })))
      }
      // An entry holds a script call's events one after another, each its kind (`c`, `u`, `d`,
      // `e`, `x`) and fields by position: here the group `g`, keys `k…` and payloads, so a
      // line of one of those letters alone starts an event.
      const events = (prefix: string) =>
        cli(shared.port, 'XRANGE', `${prefix}events`, '-', '+')
          .split('\n')
          .filter((line) => /^[cudex]$/.test(line)).length
      expect(events(all)).toBe(2_000)
      // Trimmed to about 50: as each mark is made (one per 50 / 16 = 3 events), to the entry
      // of the newest mark at least 50 events old, so a few more than 50 stay, up to about
      // three batches of writes more.
      expect(events(kept)).toBeGreaterThanOrEqual(50)
      expect(events(kept)).toBeLessThan(400)
    }, 30_000)

    it('rejects an eventsKept that is not a positive whole number', async () => {
      for (const eventsKept of [0, -1, 1.5, Number.NaN, '100', null]) {
        const opening = StateManager.open({ adapter: 'redis', url: shared.url, prefix: freshPrefix(), eventsKept } as any)
        await expect(opening).rejects.toMatchObject({ code: 'INVALID_ARGUMENT', message: expect.stringContaining('eventsKept') })
      }
    })
  })

  describe('calls made before the connection is up', () => {
    it('new StateManager queues calls until connected, and they resolve as they would once open', async () => {
      const prefix = freshPrefix()
      const state = track(new StateManager({ adapter: 'redis', url: shared.url, prefix }))
      const seen: ChangeEvent[] = []
      state.onChange((event) => void seen.push(event), { group: 'orders' })
      const [created, missing, counted, groups] = await Promise.all([
        state.set('orders', 'o1', { status: 'pending' }),
        state.get('orders', 'nothing-here'),
        state.update('orders', 'o2', [{ type: 'increment', path: 'items', by: 2 }]),
        state.listGroups(),
      ])
      expect(created).toEqual({ new_value: { status: 'pending' }, old_value: null })
      expect(missing).toBeNull()
      expect(counted).toEqual({ new_value: { items: 2 }, old_value: null })
      expect(Array.isArray(groups)).toBe(true)
      expect(await state.get('orders', 'o1')).toEqual({ status: 'pending' })
      // o1 and o2 were written concurrently, so either may come first.
      const entries = await state.entries('orders')
      expect([...entries].sort((x, y) => (x.key < y.key ? -1 : 1))).toEqual([
        { key: 'o1', value: { status: 'pending' } },
        { key: 'o2', value: { items: 2 } },
      ])
      // The listener subscribed before the connection was up hears both writes.
      await waitFor(() => seen.length >= 2, 10_000, 'the two change events')
      expect(seen.map((event) => [event.event_type, event.item_id]).sort()).toEqual([
        ['state:created', 'o1'],
        ['state:created', 'o2'],
      ])
    }, 30_000)
  })
})
