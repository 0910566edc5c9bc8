// One fresh StateManager per test, closed after it: tests never share a store, so no test
// depends on what another left behind.
//
// Conformance: with STEPSTATE_TEST_ADAPTER=file (set by `npm test` for its second pass), every
// manager these helpers make is a file store in a new temporary directory; with
// STEPSTATE_TEST_ADAPTER=redis (the third pass), a Redis store under a new prefix on the private
// redis-server that helpers/redis-server.mjs starts (STEPSTATE_TEST_REDIS_URL); with
// STEPSTATE_TEST_ADAPTER=adapter, a user's own store: a fresh Map-backed StateAdapter
// (helpers/map-adapter.ts). So the same specs check that every store behaves exactly like the
// in-memory store.
import { mkdtempSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { StateManager } from '../../index.js'
import { MapAdapter } from './map-adapter'

type Options = ConstructorParameters<typeof StateManager>[0]

/** The adapter the conformance pass runs the specs on: 'memory' (default), 'file', 'redis', or
 *  'adapter' (a MapAdapter). */
export const adapterUnderTest: 'memory' | 'file' | 'redis' | 'adapter' =
  process.env.STEPSTATE_TEST_ADAPTER === 'file' ||
  process.env.STEPSTATE_TEST_ADAPTER === 'redis' ||
  process.env.STEPSTATE_TEST_ADAPTER === 'adapter'
    ? process.env.STEPSTATE_TEST_ADAPTER
    : 'memory'

let prefixes = 0

/** A prefix no other test uses, so that each test starts with an empty Redis store. */
export function freshPrefix(): string {
  prefixes += 1
  return `test-${process.pid}-${prefixes}-${Date.now()}:`
}

const openManagers: StateManager[] = []
const directories: string[] = []

/** A new empty directory under the OS temp dir, removed after the test. */
export function tempDirectory(): string {
  const dir = mkdtempSync(join(tmpdir(), 'stepstate-test-'))
  directories.push(dir)
  return dir
}

/** Registers a manager so that `closeManagers` (run in `afterEach`) closes it. */
export function track(state: StateManager): StateManager {
  openManagers.push(state)
  return state
}

/** The options a manager of the adapter under test gets (a file store in a fresh directory). */
export function storeOptions(options?: Options): Options {
  if (adapterUnderTest === 'memory' || (options && options.adapter !== undefined)) return options
  if (adapterUnderTest === 'redis') {
    return { adapter: 'redis', url: process.env.STEPSTATE_TEST_REDIS_URL, prefix: freshPrefix(), ...options }
  }
  if (adapterUnderTest === 'adapter') return { adapter: new MapAdapter(), ...options }
  return { adapter: 'file', path: tempDirectory(), ...options }
}

/** A new manager of the adapter under test, closed after the test. */
export function freshManager(options?: Options): StateManager {
  const settings = storeOptions(options)
  return track(settings === undefined ? new StateManager() : new StateManager(settings))
}

/** Closes every manager the test made (closing one already closed is harmless), then removes
 *  the test's directories. */
export async function closeManagers(): Promise<void> {
  await Promise.all(openManagers.splice(0).map((state) => state.close()))
  for (const dir of directories.splice(0)) rmSync(dir, { recursive: true, force: true })
}
