#!/usr/bin/env node
// The Python side of the tests: a virtual environment in `.venv` (created with the machine's
// `python3` when missing) holding crates/stepstate-py/requirements-dev.txt (pytest and friends,
// from the package registry), and the `stepstate` Python package built and installed into it
// from crates/stepstate-py with one `pip install`, as a user installs it. Used by .ci/run and
// by `npm test` (scripts/test.js); `node scripts/python-env.js` alone prepares it
// (`--tools-only`: the environment and its tools, not the package).
'use strict'
const { spawnSync } = require('node:child_process')
const fs = require('node:fs')
const path = require('node:path')

const root = path.join(__dirname, '..')
const venv = path.join(root, '.venv')
const python = path.join(venv, 'bin', 'python')
const requirements = path.join(root, 'crates', 'stepstate-py', 'requirements-dev.txt')
/** Where the requirements last installed are recorded, so an unchanged list is not reinstalled. */
const stamp = path.join(venv, '.stepstate-requirements')

function run(command, args) {
  console.log(`$ ${[command, ...args].join(' ')}`)
  const result = spawnSync(command, args, { cwd: root, stdio: 'inherit' })
  if (result.error || result.status !== 0) {
    console.error(`python-env: \`${command} ${args.join(' ')}\` failed${result.error ? `: ${result.error.message}` : ''}`)
    process.exit(result.status || 1)
  }
}

/** Makes `.venv` with the test requirements; returns the path of its python. */
function prepareVenv() {
  if (!fs.existsSync(python)) run('python3', ['-m', 'venv', venv])
  const wanted = fs.readFileSync(requirements, 'utf8')
  if (!fs.existsSync(stamp) || fs.readFileSync(stamp, 'utf8') !== wanted) {
    run(python, ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '-r', requirements])
    fs.writeFileSync(stamp, wanted)
  }
  return python
}

/** Builds the Python package (release) and installs it into `.venv`, as `pip install` does. */
function installPackage() {
  run(python, ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '--force-reinstall', '--no-deps', path.join('crates', 'stepstate-py')])
}

module.exports = { prepareVenv, installPackage, python }

if (require.main === module) {
  prepareVenv()
  if (!process.argv.includes('--tools-only')) installPackage()
}
