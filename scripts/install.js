#!/usr/bin/env node
// `npm install` hook: builds the native addon from source (release profile) unless a binary for
// this platform already loads. Needs only the Rust toolchain; nothing is downloaded.
'use strict'
const { spawnSync } = require('node:child_process')
const path = require('node:path')

const root = path.join(__dirname, '..')

function loads() {
  try {
    require(path.join(root, 'binding.js'))
    return true
  } catch {
    return false
  }
}

function build() {
  const cli = require.resolve('@napi-rs/cli/package.json', { paths: [root] })
  const bin = require(cli).bin
  const script = path.join(path.dirname(cli), typeof bin === 'string' ? bin : bin.napi)
  const args = [script, 'build', '--platform', '--release', '--js', 'binding.js', '--dts', 'binding.d.ts']
  const result = spawnSync(process.execPath, args, { cwd: root, stdio: 'inherit' })
  if (result.status !== 0) {
    console.error('stepstate: building the native addon failed (is a Rust toolchain installed? https://rustup.rs)')
    process.exit(result.status || 1)
  }
}

if (require.main === module) {
  if (process.argv.includes('--force') || !loads()) build()
}

module.exports = { build }
