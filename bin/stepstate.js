#!/usr/bin/env node
'use strict'
// `npx stepstate`: see lib/cli/main.js, or run `npx stepstate --help`.
require('../lib/cli/main.js')
  .main(process.argv.slice(2))
  .then((code) => {
    process.exitCode = code
    // The native store's threads and Redis connections are closed by each command; a watch
    // ends on SIGINT. Nothing else should keep the process, but do not wait on it.
    setImmediate(() => process.exit(code))
  })
