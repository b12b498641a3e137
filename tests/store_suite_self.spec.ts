import { execFile } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { test } from '@japa/runner'
import { DEFECTS, type Defect } from './fixtures/store_suite/server_store.ts'
import type { SuiteOutcome } from './fixtures/store_suite/run.ts'

const RUNNER = fileURLToPath(new URL('./fixtures/store_suite/run.ts', import.meta.url))

/**
 * The store suite run in a process of its own on a ServerStore with the
 * given defect: the outcome of each of its tests
 */
function runSuite(defect: Defect): Promise<SuiteOutcome[]> {
  return new Promise((resolve, reject) => {
    execFile(
      process.execPath,
      ['--import=@poppinss/ts-exec', RUNNER],
      {
        env: { ...process.env, SUITE_DEFECT: defect },
        maxBuffer: 16 * 1024 * 1024,
        timeout: 120_000,
      },
      (error, stdout, stderr) => {
        const line = stdout.split('\n').find((text) => text.startsWith('SUITE_OUTCOMES '))
        if (!line) return reject(error ?? new Error(`no outcome from the suite:\n${stderr}`))
        resolve(JSON.parse(line.slice('SUITE_OUTCOMES '.length)))
      }
    )
  })
}

/**
 * The tests each defect must fail (at least these)
 */
const CAUGHT_BY: Record<Exclude<Defect, 'none'>, string[]> = {
  'per-instance': [
    'a lock held through one instance is refused through the other',
    'fencing tokens keep increasing across instances, also new ones',
    'contenders spread over two instances never overlap',
    'acquires a free lock and refuses a second owner',
  ],
  'app clock': [
    'with the app clock ahead, a held lock stays held',
    'with the app clock behind, an expired lock is free on time',
  ],
  'release ignores expiry': [
    'a release after expiry, with no new holder, fails with E_LOCK_NOT_OWNED',
  ],
  'default ttl': ['a lock without ttl never expires'],
  'polls': ['every release in this instance wakes the waiter, which does not poll meanwhile'],
  'misses wake-ups': [
    'every release in this instance wakes the waiter, which does not poll meanwhile',
    'every release in another instance wakes the waiter, which does not poll meanwhile',
  ],
}

test.group('adonis-lock/testing | the store suite itself', (group) => {
  /**
   * All at once: each run mostly waits on timers
   */
  let outcomes: Map<Defect, Promise<SuiteOutcome[]>>
  group.setup(() => {
    outcomes = new Map(DEFECTS.map((defect) => [defect, runSuite(defect)]))
    for (const outcome of outcomes.values()) outcome.catch(() => {})
  })
  group.each.timeout(120_000)

  test('passes a correct store shared by its instances', async ({ assert }) => {
    const results = await outcomes.get('none')!
    const failed = results.filter((result) => result.failed).map((result) => result.title)
    assert.deepEqual(failed, [])
    assert.isAbove(results.filter((result) => !result.failed && !result.skipped).length, 30)
  })

  for (const [defect, titles] of Object.entries(CAUGHT_BY)) {
    test(`fails a store whose defect is: ${defect}`, async ({ assert }) => {
      const results = await outcomes.get(defect as Defect)!
      const failed = results.filter((result) => result.failed).map((result) => result.title)
      assert.includeMembers(failed, titles)
    })
  }
})
