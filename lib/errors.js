'use strict'
// The errors of stepstate, shared by the public face (index.js) and every backend: `StateError`
// with a stable `code`, `TypeError` with code `INVALID_ARGUMENT` for bad arguments, and the one
// mapping of the native binding's errors (`code \x1f opIndex \x1f message`) onto them. A backend
// rejects only with errors made here, so callers branch on `err.code` whatever the store.

const ERROR_FIELD_SEPARATOR = '\u001f'

/** An error of the store; `code` is stable, `opIndex` names the failing op of an update. */
class StateError extends Error {
  constructor(code, message, opIndex, options) {
    super(message, options)
    this.name = 'StateError'
    this.code = code
    if (opIndex !== undefined) this.opIndex = opIndex
  }
}

/** An error with its code; `cause` is what the caller's own code threw, when it threw. */
function makeError(code, message, opIndex, cause) {
  const options = cause === undefined ? undefined : { cause }
  if (code === 'INVALID_ARGUMENT') {
    const err = new TypeError(message, options)
    err.code = code
    return err
  }
  return new StateError(code, message, opIndex, options)
}

/** What a caller's getter, Proxy trap or toJSON threw, for a message. */
function reason(err) {
  try {
    return err instanceof Error ? err.message : String(err)
  } catch {
    return 'an unprintable value'
  }
}

/** Turns an error thrown by the binding back into a StateError with its code. */
function fromNative(err) {
  const message = err && err.message
  if (typeof message !== 'string') return err
  const first = message.indexOf(ERROR_FIELD_SEPARATOR)
  if (first < 0) return err
  const second = message.indexOf(ERROR_FIELD_SEPARATOR, first + 1)
  const opIndex = message.slice(first + 1, second)
  return makeError(message.slice(0, first), message.slice(second + 1), opIndex === '' ? undefined : Number(opIndex))
}

/** An argument as a message names it: `null`, `"text"`, `an object`, `number 3`. */
function describe(value) {
  if (value === null) return 'null'
  if (typeof value === 'string') return value === '' ? 'an empty string' : JSON.stringify(value)
  return typeof value === 'object' ? 'an object' : `${typeof value} ${String(value)}`
}

module.exports = { StateError, makeError, reason, fromNative, describe }
