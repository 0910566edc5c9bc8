'use strict'
// The exit codes of `npx stepstate`, which scripts may rely on (README, "Looking into a store"),
// and the one mapping from an error's `code` onto them.

const EXIT = {
  OK: 0, // success
  NOT_FOUND: 1, // no such key, or no store at the path
  USAGE: 2, // the command line is wrong: unknown command or option, missing argument, bad JSON
  LOCKED: 3, // a writing command met a file store another process holds
  CORRUPT: 4, // the file store is damaged (the message names file and offset)
  UNAVAILABLE: 5, // the Redis server cannot be reached
  REJECTED: 6, // the store refused a write (an op failed, value too large, ...); import: some lines
  FAILED: 7, // anything else (IO errors, ...)
}

/** An error the CLI raises itself, with the exit code it ends with. */
class CliError extends Error {
  constructor(exitCode, message, code) {
    super(message)
    this.exitCode = exitCode
    this.code = code || (exitCode === EXIT.NOT_FOUND ? 'NOT_FOUND' : exitCode === EXIT.USAGE ? 'USAGE' : 'FAILED')
  }
}

/** The exit code for an error of the store or of the CLI. */
function exitCodeOf(err) {
  if (err instanceof CliError) return err.exitCode
  switch (err && err.code) {
    case 'LOCKED':
      return EXIT.LOCKED
    case 'CORRUPT':
      return EXIT.CORRUPT
    case 'BACKEND_UNAVAILABLE':
      return EXIT.UNAVAILABLE
    case 'INVALID_ARGUMENT':
      return EXIT.USAGE
    case 'INVALID_VALUE':
    case 'INVALID_OP':
    case 'VALUE_TOO_LARGE':
      return EXIT.REJECTED
    default:
      // Op codes (`test.failed`, `increment.not_number`, ...) are refusals of the update.
      return typeof err?.code === 'string' && err.code.includes('.') ? EXIT.REJECTED : EXIT.FAILED
  }
}

module.exports = { EXIT, CliError, exitCodeOf }
