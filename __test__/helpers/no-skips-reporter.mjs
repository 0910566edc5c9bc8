// A vitest reporter that makes skips loud: under CI (process.env.CI set) the run fails when
// any test was skipped or left as todo, because a skipped test proves nothing and would
// otherwise pass unnoticed. Locally it stays silent, so `.skip` while debugging still works.
export default class NoSkipsReporter {
  onTestRunEnd(testModules) {
    if (!process.env.CI) return
    const skipped = []
    for (const testModule of testModules) {
      for (const test of testModule.children.allTests()) {
        const mode = test.options?.mode
        const state = test.result?.()?.state
        if (mode === 'skip' || mode === 'todo' || state === 'skipped') {
          skipped.push(`${testModule.moduleId} > ${test.fullName} (${mode === 'todo' ? 'todo' : 'skipped'})`)
        }
      }
    }
    if (skipped.length === 0) return
    process.stderr.write(
      `\nno-skips-reporter: CI is set and ${skipped.length} test(s) did not run, so the run fails:\n` +
        skipped.map((line) => `  - ${line}\n`).join(''),
    )
    process.exitCode = 1
  }
}
