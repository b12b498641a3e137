/**
 * `npm run bench`: adonis-lock against raw clients and peer libraries, in
 * one invocation, as ratios to the raw baseline of each backend.
 *
 *   npm run bench                      full run (about 12 minutes), writes benchmarks/RESULTS.md
 *                                      and its charts (SVG) next to it
 *   npm run bench -- --quick           under 2 minutes, prints only
 *   npm run bench -- --only=redis,async-mutex --scenarios=sequential
 *   npm run bench -- --out=tmp/bench.md    the results and their charts in tmp/
 *   npm run bench -- --compare=c0e3275 --out=tmp/bench.md
 *                                      adds a twin of each adonis-lock row running
 *                                      the package's code of that commit
 *
 * `--only` takes contender ids or backends (redis, memory, postgres, mysql,
 * sqlite); the baselines of the chosen backends always run, the ratios
 * need them.
 *
 * `--compare=<rev>` extracts the tree of <rev> under tmp/bench-compare/ and
 * runs its own `ours` contenders (those with a current id) as
 * `<id>@<hash>`, right after the current ones in every round and against
 * the same baselines; the report adds a "Compared with" table. The goals
 * stay about the current code.
 */
import { mkdir, readFile, writeFile } from 'node:fs/promises'
import os from 'node:os'
import { parseArgs } from 'node:util'
import { CONTENDERS, baselineOf, referenceOf } from './contenders/main.ts'
import type { Contender, LockSession } from './contenders/contender.ts'
import { createTables } from './contenders/database.ts'
import { writeCharts } from './lib/charts.ts'
import { extractRev, twinsAt, withTwins } from './lib/compare.ts'
import { environment } from './lib/environment.ts'
import { extractAnalysis, goals, renderReport, type Report } from './lib/report.ts'
import { startServices, type Services } from './lib/services.ts'
import { countStoreCalls } from './lib/store_calls.ts'
import { runContended, type ContendedSpec } from './scenarios/contended.ts'
import { runThroughput, type ThroughputSpec } from './scenarios/throughput.ts'

const RESULTS_FILE = new URL('./RESULTS.md', import.meta.url)
const SCENARIOS = ['sequential', 'concurrent', 'contended'] as const

const { values: args } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    scenarios: { type: 'string' },
    rounds: { type: 'string' },
    out: { type: 'string' },
    compare: { type: 'string' },
  },
})

const quick = args.quick!
const rounds = args.rounds ? Number(args.rounds) : undefined

const sequentialSpec: ThroughputSpec = {
  name: 'sequential',
  loops: 1,
  rounds: rounds ?? (quick ? 8 : 25),
  windowMs: quick ? 120 : 300,
  warmupMs: quick ? 200 : 500,
}
const concurrentSpec: ThroughputSpec = {
  name: 'concurrent',
  loops: 64,
  rounds: rounds ?? (quick ? 8 : 25),
  windowMs: quick ? 120 : 300,
  warmupMs: quick ? 200 : 500,
}
const contendedSpec: ContendedSpec = {
  rounds: rounds ?? (quick ? 1 : 3),
  windowMs: quick ? 1500 : 3000,
  workers: 32,
  processes: 2,
  criticalSectionMs: 1,
  drainMs: quick ? 5000 : 15_000,
}

function log(line: string) {
  console.error(`[bench] ${line}`)
}

function selectContenders(only: string | undefined): Contender[] {
  if (!only) return CONTENDERS
  const wanted = new Set(only.split(',').map((item) => item.trim()))
  const chosen = CONTENDERS.filter(
    (contender) => wanted.has(contender.id) || wanted.has(contender.backend)
  )
  if (chosen.length === 0) throw new Error(`--only=${only} matches no contender`)
  const backends = new Set(chosen.map((contender) => contender.backend))
  const baselines = [
    ...[...backends].map((backend) => baselineOf(backend)),
    ...chosen.map((contender) => referenceOf(contender)),
  ]
  return CONTENDERS.filter(
    (contender) => chosen.includes(contender) || baselines.includes(contender)
  )
}

/**
 * Opens a session per contender and checks it can take and give back a
 * lock; those that cannot (a store not implemented yet, a server
 * missing) are left out with the reason
 */
async function openSessions(
  contenders: Contender[],
  services: Services,
  unavailable: Map<string, string>
) {
  const sessions = new Map<string, LockSession>()
  for (const contender of contenders) {
    let session: LockSession | undefined
    try {
      session = await contender.open(services.targets, 'default')
      const release = await withTimeout(session.acquire(`bench:probe:${contender.id}`), 10_000)
      await withTimeout(release(), 10_000)
      sessions.set(contender.id, session)
    } catch (error) {
      unavailable.set(contender.id, (error as Error).message)
      log(`${contender.id} left out: ${(error as Error).message}`)
      await session?.close().catch(() => {})
    }
  }
  return sessions
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms)
    }),
  ])
}

async function main() {
  const startedAt = Date.now()
  const scenarios = args.scenarios
    ? args.scenarios.split(',').map((item) => item.trim())
    : [...SCENARIOS]
  for (const scenario of scenarios) {
    if (!SCENARIOS.includes(scenario as any)) throw new Error(`Unknown scenario "${scenario}"`)
  }

  const compared = args.compare ? { rev: args.compare, sha: await extractRev(args.compare) } : null
  countStoreCalls()
  log('starting a private redis-server and the PostgreSQL, MariaDB and SQLite bench databases')
  const services = await startServices()
  process.once('SIGINT', () => {
    services.stop().finally(() => process.exit(130))
  })
  const unavailable = new Map<string, string>()
  try {
    for (const line of services.missing) log(line)
    await createTables(services.targets)

    let contenders = selectContenders(args.only).filter(
      (contender) => contender.backend === 'memory' || services.targets[contender.backend] !== null
    )
    if (compared) {
      contenders = withTwins(contenders, await twinsAt(compared.sha))
      const twins = contenders.filter((contender) => contender.compared)
      log(`compared with ${compared.sha}: ${twins.map((twin) => twin.id).join(', ')}`)
    }
    const env = environment(services.versions)
    const report: Report = {
      mode: quick ? 'quick' : 'full',
      command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`,
      environment: env,
      unavailable,
      missing: services.missing,
      durationMs: 0,
      ...(compared ? { compared } : {}),
    }

    const sessions = await openSessions(contenders, services, unavailable)
    const available = contenders.filter((contender) => sessions.has(contender.id))
    try {
      if (scenarios.includes('sequential')) {
        env.loadAtStart.push(['sequential', os.loadavg()[0]])
        log('sequential acquire + release')
        report.sequential = await runThroughput(sequentialSpec, available, sessions, log)
      }
      if (scenarios.includes('concurrent')) {
        env.loadAtStart.push(['64 loops', os.loadavg()[0]])
        log(`${concurrentSpec.loops} concurrent loops on distinct keys`)
        report.concurrent = await runThroughput(concurrentSpec, available, sessions, log)
      }
    } finally {
      for (const session of sessions.values()) await session.close().catch(() => {})
    }
    if (scenarios.includes('contended')) {
      env.loadAtStart.push(['contended', os.loadavg()[0]])
      log(`contended: ${contendedSpec.processes} processes × ${contendedSpec.workers / 2} workers`)
      report.contended = await runContended(contendedSpec, available, services, log)
    }

    env.loadAfter = os.loadavg()
    report.durationMs = Date.now() - startedAt
    const output = args.out
      ? new URL(args.out, `file://${process.cwd()}/`)
      : quick
        ? null
        : RESULTS_FILE
    if (output) {
      await mkdir(new URL('./', output), { recursive: true })
      report.charts = await writeCharts(report, output)
    }
    const previous = output ? await readFile(output, 'utf8').catch(() => null) : null
    const markdown = renderReport(report, extractAnalysis(previous))
    console.log(markdown)
    if (output) {
      await writeFile(output, markdown)
      log(`written to ${output.pathname}`)
    }
    const missed = goals(report).filter((goal) => goal.met === false)
    log(
      missed.length === 0
        ? 'every goal measured was met'
        : `goals missed: ${missed.map((goal) => goal.goal).join('; ')}`
    )
  } finally {
    await services.stop()
  }
}

await main()
