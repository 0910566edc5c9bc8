// Typings of `stepstate/testing` (testing.js): state for the tests of step handlers.
import type { StateChangeEvent, StateManager, StateOptions } from './index'

/** One test's state: a fresh manager, and what was done to it. */
export interface TestState<Groups extends Record<string, unknown> = Record<string, any>> {
  /** The manager: hand it to the handler under test (in memory unless the options said otherwise). */
  readonly state: StateManager<Groups>
  /** Every change event so far, in commit order; `changes()` waits for the latest. */
  readonly events: StateChangeEvent[]
  /** `{ ...extra, state }`: the context a step handler takes. */
  context<C extends object = {}>(extra?: C): C & { state: StateManager<Groups> }
  /** The events so far, once those of every write made before the call have arrived. */
  changes(): Promise<StateChangeEvent[]>
  /** Forgets the events recorded so far (after a test's set-up, say). */
  clearChanges(): Promise<void>
  /** The group as an object `{ key: value }`, in insertion order. */
  values<G extends keyof Groups & string>(group: G): Promise<Record<string, Groups[G]>>
  /** Every non-empty group: `{ group: { key: value } }`. */
  snapshot(): Promise<{ [G in keyof Groups]?: Record<string, Groups[G]> }>
  /** Closes the manager; twice is harmless. */
  close(): Promise<void>
}

/** A fresh manager for one test, recording every change event from the start. */
export function createTestState<Groups extends Record<string, unknown> = Record<string, any>>(
  options?: StateOptions,
): TestState<Groups>

/** Closes every test state not yet closed: `afterEach(closeTestStates)`. */
export function closeTestStates(): Promise<void>
