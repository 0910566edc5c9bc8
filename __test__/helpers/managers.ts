// One fresh in-memory StateManager per test, closed after it: tests never share a store, so
// no test depends on what another left behind.
import { StateManager } from '../../index.js'

type Options = ConstructorParameters<typeof StateManager>[0]

const openManagers: StateManager[] = []

/** Registers a manager so that `closeManagers` (run in `afterEach`) closes it. */
export function track(state: StateManager): StateManager {
  openManagers.push(state)
  return state
}

/** A new manager (`new StateManager(options)`), closed after the test. */
export function freshManager(options?: Options): StateManager {
  return track(options === undefined ? new StateManager() : new StateManager(options))
}

/** Closes every manager the test made; closing one that the test already closed is harmless. */
export async function closeManagers(): Promise<void> {
  await Promise.all(openManagers.splice(0).map((state) => state.close()))
}
