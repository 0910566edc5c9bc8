// Waiting for something asynchronous to become true without fixed sleeps: poll a predicate
// every 10 ms and fail with a description once the time is up.

/**
 * Resolves once `predicate` (sync or async) returns a truthy value, polling every `intervalMs`;
 * rejects after `timeoutMs` with `what` in the message. Resolves to the elapsed milliseconds.
 */
export async function waitFor(
  predicate: () => unknown,
  timeoutMs: number,
  what = 'the condition',
  intervalMs = 10,
): Promise<number> {
  const started = Date.now()
  for (;;) {
    if (await predicate()) return Date.now() - started
    if (Date.now() - started > timeoutMs) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`)
    }
    await new Promise((resolve) => setTimeout(resolve, intervalMs))
  }
}
