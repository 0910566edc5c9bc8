'use strict'
// Output of `npx stepstate`: aligned columns, values pretty-printed, and progress lines on
// stderr for long commands when stderr is a terminal.

/** Display width of a cell: code points, control characters shown escaped. */
function cell(text) {
  return String(text).replace(/[\u0000-\u001f\u007f]/g, (c) => JSON.stringify(c).slice(1, -1))
}

/**
 * Rows as aligned columns under a header: every column padded to its widest cell, the last
 * cut to the terminal's width (with `…`) when `width` is given.
 */
function table(header, rows, width) {
  const all = [header, ...rows].map((row) => row.map(cell))
  const widths = header.map((_, i) => Math.max(...all.map((row) => [...row[i]].length)))
  return all
    .map((row) => {
      let line = row.map((text, i) => (i === row.length - 1 ? text : text + ' '.repeat(widths[i] - [...text].length))).join('  ')
      if (width && [...line].length > width) line = [...line].slice(0, Math.max(width - 1, 1)).join('') + '…'
      return line + '\n'
    })
    .join('')
}

/** A JSON value pretty-printed (two spaces). */
function pretty(value) {
  return JSON.stringify(value, null, 2)
}

/** A JSON value on one line. */
function compact(value) {
  return JSON.stringify(value)
}

/** A byte count as people read it: 1.2 MB. */
function bytes(n) {
  if (n < 1000) return `${n} B`
  const units = ['kB', 'MB', 'GB', 'TB']
  let value = n
  let unit = -1
  while (value >= 1000 && unit < units.length - 1) {
    value /= 1000
    unit += 1
  }
  return `${value.toFixed(1)} ${units[unit]}`
}

/**
 * A progress line on stderr, only when stderr is a terminal and the work has taken more than
 * half a second; `update(text)` replaces it (at most ten times a second), `done()` clears it.
 */
function progress(stream = process.stderr) {
  const started = Date.now()
  let shown = 0
  let visible = false
  return {
    update(text) {
      if (!stream.isTTY) return
      const now = Date.now()
      if (now - started < 500 || now - shown < 100) return
      shown = now
      visible = true
      stream.write(`\r\u001b[2K${text}`)
    },
    done() {
      if (visible) stream.write('\r\u001b[2K')
      visible = false
    },
  }
}

module.exports = { table, pretty, compact, bytes, progress }
