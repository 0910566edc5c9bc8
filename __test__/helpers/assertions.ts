// Assertions shared by the specs: how a call must fail, and proof that a failed call left the
// store exactly as it was.
import { expect } from 'vitest'
import type { StateManager } from '../../index.js'

/** A rejection as the specs inspect it: an Error with a string `code` (and `opIndex` for ops). */
export type Rejection = Error & { code: string; opIndex?: number }

/**
 * Calls `call` and returns what its promise rejected with. Fails the test if the call throws
 * synchronously (every method returns a Promise) or if the promise resolves.
 */
export async function rejectionOf(call: () => unknown): Promise<Rejection> {
  let pending: unknown
  try {
    pending = call()
  } catch (err) {
    expect.fail(`expected a rejected Promise, but the call threw synchronously: ${String(err)}`)
  }
  expect(pending, 'the call must return a Promise').toBeInstanceOf(Promise)
  let resolved: unknown
  try {
    resolved = await pending
  } catch (err) {
    return err as Rejection
  }
  return expect.fail(`expected a rejection, but the call resolved with ${preview(resolved)}`)
}

/** Awaits the rejection of `call` and checks it is an Error whose string `code` is `code`. */
export async function expectRejection(call: () => unknown, code: string | RegExp): Promise<Rejection> {
  const err = await rejectionOf(call)
  expect(err).toBeInstanceOf(Error)
  expect(typeof err.code).toBe('string')
  if (typeof code === 'string') expect(err.code).toBe(code)
  else expect(err.code).toMatch(code)
  return err
}

/** What the public API shows of a store: its groups, and each group's entries and values. */
export async function snapshotOf(state: StateManager, probes: Array<[unknown, unknown]> = []) {
  const groups: string[] = await state.listGroups()
  const contents: Record<string, unknown> = {}
  for (const group of groups) {
    contents[group] = { entries: await state.entries(group), values: await state.getGroup(group) }
  }
  const probed: unknown[] = []
  for (const [group, key] of probes) {
    if (isName(group) && isName(key)) probed.push(await state.get(group, key))
  }
  return { groups, contents, probed }
}

/**
 * Expects `call` to reject with `code` and the store (every group, plus `get` of each probe)
 * to read exactly as it did before the call. Returns the rejection for further checks.
 */
export async function expectRejectionLeavesStoreUnchanged(
  state: StateManager,
  call: () => unknown,
  code: string | RegExp,
  probes: Array<[unknown, unknown]> = [],
): Promise<Rejection> {
  const before = await snapshotOf(state, probes)
  const err = await expectRejection(call, code)
  expect(await snapshotOf(state, probes)).toEqual(before)
  return err
}

function isName(name: unknown): name is string {
  return typeof name === 'string' && name.length > 0 && Buffer.byteLength(name) <= 1024
}

function preview(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value)
  } catch {
    return String(value)
  }
}
