import { assert } from '@japa/assert'
import { fileSystem } from '@japa/file-system'
import { configure, processCLIArgs, run } from '@japa/runner'
import { BaseReporter } from '@japa/runner/core'
import { spec } from '@japa/runner/reporters'

let summaryLine = '0 passed, 1 failed'

/**
 * Keeps the plain `N passed, N failed` line CI reads, printed last
 */
class SummaryLineReporter extends BaseReporter {
  protected async end() {
    const { passed, failed, skipped } = this.runner!.getSummary().aggregates
    summaryLine = `${skipped ? `${skipped} skipped\n` : ''}${passed} passed, ${failed} failed`
  }
}

processCLIArgs(process.argv.splice(2))
configure({
  files: ['tests/**/*.spec.ts'],
  plugins: [assert(), fileSystem({ basePath: new URL('../tmp/fs', import.meta.url) })],
  reporters: {
    activated: ['spec', 'summary-line'],
    list: [
      spec(),
      { name: 'summary-line', handler: (...args) => new SummaryLineReporter().boot(...args) },
    ],
  },
  timeout: 10_000,
  forceExit: false,
})

await run()
console.log(summaryLine)
/**
 * Tests leave no handles open, but a stuck one must not hang CI
 */
process.exit(process.exitCode ?? 0)
