'use strict'
// `npx stepstate`: look into a store the way people use redis-cli. Parses the command line
// (Node's util.parseArgs), runs one command (commands.js) and returns its exit code (exit.js).

const { parseArgs } = require('node:util')
const { commands } = require('./commands.js')
const { EXIT, CliError, exitCodeOf } = require('./exit.js')
const { target } = require('./store.js')
const { table } = require('./format.js')

const OPTIONS = {
  path: { type: 'string', short: 'p' },
  url: { type: 'string', short: 'u' },
  prefix: { type: 'string' },
  timeout: { type: 'string' },
  json: { type: 'boolean' },
  out: { type: 'string', short: 'o' },
  help: { type: 'boolean', short: 'h' },
}

const STORE_OPTIONS = `Store (one of):
  -p, --path DIR      a file store directory (default: .stepstate)
  -u, --url URL       a Redis store: redis://[user:password@]host:port[/db] or rediss://
      --prefix P      the Redis store's key prefix (default: the library's, stepstate:)
      --timeout MS    how long a Redis call may wait for an unreachable server (default 5000)
Output:
      --json          machine-readable output on stdout (errors: one JSON object on stderr)
  -o, --out FILE      export: write to FILE instead of stdout
  -h, --help          help (also: stepstate help <command>)`

const EXIT_CODES = `Exit codes:
  0  success
  1  not found: no such key (get, del), no store at --path, no file to import
  2  usage error: unknown command or option, missing argument, JSON that does not parse,
     an invalid group or key name, a directory that is not a store
  3  locked: a writing command (or watch) met a file store held by another process (its pid is named)
  4  corrupt: the file store is damaged (the file and offset are named)
  5  backend unavailable: the Redis server cannot be reached
  6  rejected: the store refused a write (an op failed, value too large); import: some lines rejected
  7  any other failure (an I/O error, ...)`

function usageOf(name) {
  const command = commands[name]
  return `stepstate ${name}${command.args.map((a) => (a.endsWith('?') ? ` [${a.slice(0, -1)}]` : ` <${a}>`)).join('')}`
}

function mainHelp() {
  const rows = Object.keys(commands).map((name) => [usageOf(name).slice('stepstate '.length), commands[name].summary])
  return `Usage: stepstate <command> [arguments] [options]

Look into a stepstate store (a file store directory or a Redis store).

Commands:
${table(['', ''], rows).split('\n').slice(1, -1).map((line) => '  ' + line).join('\n')}

Reading commands (groups, keys, get, list, export, stats, check) never change a file store:
they read its files without the lock, also while another process holds it, and then show what
was on disk at that moment.

${STORE_OPTIONS}

${EXIT_CODES}
`
}

function commandHelp(name) {
  return `Usage: ${usageOf(name)} [options]

${commands[name].help}

${STORE_OPTIONS}

${EXIT_CODES}
`
}

/**
 * Runs the command line `argv` (without `node` and the script); resolves with the exit code.
 * `io` may replace `out` and `err` (the standard streams).
 */
async function main(argv, io = {}) {
  const out = io.out || process.stdout
  const err = io.err || process.stderr
  let json = argv.includes('--json')
  try {
    let parsed
    try {
      parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true })
    } catch (e) {
      throw new CliError(EXIT.USAGE, `${e.message}\n(see stepstate --help)`)
    }
    const { values: options, positionals } = parsed
    json = Boolean(options.json)
    let [name, ...args] = positionals
    if (name === 'help') {
      const about = args[0]
      if (about !== undefined && !Object.hasOwn(commands, about)) throw new CliError(EXIT.USAGE, `unknown command ${JSON.stringify(about)} (see stepstate --help)`)
      out.write(about === undefined ? mainHelp() : commandHelp(about))
      return EXIT.OK
    }
    if (name === undefined) {
      if (options.help) {
        out.write(mainHelp())
        return EXIT.OK
      }
      err.write(mainHelp())
      return EXIT.USAGE
    }
    if (!Object.hasOwn(commands, name)) throw new CliError(EXIT.USAGE, `unknown command ${JSON.stringify(name)} (see stepstate --help)`)
    const command = commands[name]
    if (options.help) {
      out.write(commandHelp(name))
      return EXIT.OK
    }
    const required = command.args.filter((a) => !a.endsWith('?')).length
    if (args.length < required || args.length > command.args.length) {
      throw new CliError(EXIT.USAGE, `usage: ${usageOf(name)} (see stepstate ${name} --help)`)
    }
    if (options.out !== undefined && name !== 'export') throw new CliError(EXIT.USAGE, '--out applies to export only')
    const ctx = {
      options,
      json,
      where: target(options),
      out,
      err,
      print: (text) => out.write(text + '\n'),
    }
    return await command.run(ctx, args)
  } catch (e) {
    const exitCode = exitCodeOf(e)
    const code = typeof e?.code === 'string' ? e.code : 'FAILED'
    const message = e instanceof Error ? e.message : String(e)
    if (json) err.write(JSON.stringify({ error: { code, exit: exitCode, message } }) + '\n')
    else err.write(`stepstate: ${exitCode === EXIT.FAILED || exitCode === EXIT.USAGE ? '' : code + ': '}${message}\n`)
    return exitCode
  }
}

module.exports = { main, EXIT }
