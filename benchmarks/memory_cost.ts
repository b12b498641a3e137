/**
 * The memory store's uncontended acquire + release on this checkout
 * against the package's code at an older commit, in one process, on CPU
 * time in interleaved blocks: steadier than the memory rows of
 * `npm run bench`, which move by ±10 % between runs of unchanged code.
 * Each process gives one ratio; several processes show how far JIT and
 * heap layout move it.
 *
 *   node --import=@poppinss/ts-exec benchmarks/memory_cost.ts <rev> [processes] [rounds] [pairs]
 */
import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { LockFactory } from '../src/lock_factory.ts'
import { MemoryStore } from '../src/stores/main.ts'
import { extractRev } from './lib/compare.ts'
import { interleavedRates, type Locks } from './lib/cpu_blocks.ts'
import { median } from './lib/stats.ts'

const [rev, processes = '5', rounds = '200', pairs = '2000'] = process.argv.slice(2)
if (!rev) throw new Error('usage: memory_cost.ts <rev> [processes] [rounds] [pairs]')

/**
 * A child run: `now` twice (the second one is the noise floor) and the
 * older commit, printed as JSON
 */
if (process.env.MEMORY_COST_CHILD) {
  const tree = new URL(`../tmp/bench-compare/${rev}/src/`, import.meta.url)
  const older = await import(new URL('lock_factory.ts', tree).href)
  const olderStores = await import(new URL('stores/main.ts', tree).href)
  const options = { ttl: 30_000 }
  const rate = await interleavedRates<'now' | 'again' | 'then'>(
    {
      now: new LockFactory(new MemoryStore(), options),
      again: new LockFactory(new MemoryStore(), options),
      then: new older.LockFactory(new olderStores.MemoryStore(), options) as Locks,
    },
    Number(rounds),
    Number(pairs)
  )
  console.log(JSON.stringify({ now: rate.now / rate.then, again: rate.again / rate.then }))
} else {
  const sha = await extractRev(rev)
  const ratios: Array<{ now: number; again: number }> = []
  for (let i = 0; i < Number(processes); i++) {
    const output = execFileSync(
      process.execPath,
      [...process.execArgv, fileURLToPath(import.meta.url), sha, processes, rounds, pairs],
      { env: { ...process.env, MEMORY_COST_CHILD: '1' }, encoding: 'utf8' }
    )
    ratios.push(JSON.parse(output.trim().split('\n').pop()!))
    console.log(
      `process ${i + 1}: now / ${sha} ${ratios[i].now.toFixed(3)}x (again ${ratios[i].again.toFixed(3)}x)`
    )
  }
  const show = (values: number[]) => `${median(values).toFixed(3)}x`
  console.log(`memory store, uncontended acquire + release, CPU time, ${processes} processes`)
  console.log(`now / ${sha}: median ${show(ratios.map((ratio) => ratio.now))}`)
  console.log(`same code again / ${sha}: median ${show(ratios.map((ratio) => ratio.again))}`)
}
