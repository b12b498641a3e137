/**
 * The Markdown report: ratios to the raw baseline of the same backend,
 * measured in the same run, the goals, and the environment
 */
import { BACKEND_LABELS, BACKENDS, baselineOf } from '../contenders/main.ts'
import type { Backend, Contender } from '../contenders/contender.ts'
import {
  contendedRatio,
  mergeWindows,
  type ContendedResult,
  type ContendedRow,
} from '../scenarios/contended.ts'
import {
  p50Ratio,
  ratioToBaseline,
  type ThroughputResult,
  type ThroughputRow,
} from '../scenarios/throughput.ts'
import type { Environment } from './environment.ts'

export interface Report {
  mode: 'quick' | 'full'
  command: string
  environment: Environment
  unavailable: Map<string, string>
  missing: string[]
  sequential?: ThroughputResult
  concurrent?: ThroughputResult
  contended?: ContendedResult
  durationMs: number
}

export interface Goal {
  goal: string
  measured: string
  met: boolean | null
}

const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 })

function rate(value: number): string {
  return Number.isFinite(value) ? integer.format(value) : 'n/a'
}

function ratio(value: number): string {
  return Number.isFinite(value) ? `${value.toFixed(2)}x` : 'n/a'
}

/**
 * A duration given in ms, in µs below one ms
 */
function duration(ms: number): string {
  if (!Number.isFinite(ms)) return 'n/a'
  if (ms < 1) return `${(ms * 1000).toFixed(1)} µs`
  if (ms < 100) return `${ms.toFixed(2)} ms`
  return `${integer.format(ms)} ms`
}

function perUnit(value: number | null): string {
  return value === null || !Number.isFinite(value) ? 'n/a' : value.toFixed(2)
}

function table(header: string[], rows: string[][], align: 'numbers' | 'left' = 'numbers'): string {
  return [
    `| ${header.join(' | ')} |`,
    `| ${header.map((_, index) => (index === 0 || align === 'left' ? '---' : '---:')).join(' | ')} |`,
    ...rows.map((row) => `| ${row.join(' | ')} |`),
  ].join('\n')
}

function name(contender: Contender): string {
  return contender.role === 'ours' ? `**${contender.label}**` : contender.label
}

function throughputSection(title: string, intro: string, result: ThroughputResult): string {
  const parts = [`## ${title}`, '', intro, '']
  for (const backend of BACKENDS) {
    const rows = result.rows.filter((row) => row.contender.backend === backend)
    if (rows.length === 0) continue
    const baseline = rows.find((row) => row.contender.role === 'baseline')
    parts.push(`### ${BACKEND_LABELS[backend]}`, '')
    parts.push(
      table(
        [
          'contender',
          'pairs/s',
          'vs baseline',
          'p50',
          'p50 vs baseline',
          'p99',
          'round trips/pair',
        ],
        rows.map((row) => {
          if (row.error && row.pairs === 0) {
            return [name(row.contender), `failed: ${row.error}`, '', '', '', '', '']
          }
          const compared = baseline && row !== baseline
          return [
            name(row.contender),
            rate((row.pairs / row.elapsedMs) * 1000),
            compared ? ratio(ratioToBaseline(row, baseline)) : 'baseline',
            duration(row.latency.quantile(0.5)),
            compared ? ratio(p50Ratio(row, baseline)) : 'baseline',
            duration(row.latency.quantile(0.99)),
            backend === 'memory' ? '—' : perUnit(row.storeCalls / row.pairs),
          ]
        })
      ),
      ''
    )
  }
  return parts.join('\n')
}

function contendedSection(result: ContendedResult): string {
  const { spec } = result
  const parts = [
    `## Contended: ${spec.processes} processes × ${spec.workers / spec.processes} workers on one key`,
    '',
    `${spec.workers} workers loop acquire → critical section (\`setTimeout(${spec.criticalSectionMs})\`) → release on one key, ` +
      `${spec.rounds} window(s) of ${spec.windowMs / 1000} s per contender and retry mode. Memory stores live in one process, ` +
      `so their ${spec.workers} workers run in one. **retry**: \`default\` = the library's own settings, \`10 ms\` = its retry delay set to 10 ms. ` +
      '**served**: workers that got at least one critical section (fewest over the windows). **wait**: from asking to holding; ' +
      'a wait still going at the end of a window counts until then. **round trips/cs**: commands the clients sent (counted in ioredis / pg / mysql2; for SQLite, statements run by better-sqlite3), per critical section. ' +
      '**server calls/cs**: Redis `INFO commandstats` delta on the private server, including the commands run inside Lua scripts. ' +
      '**overlaps**: critical sections that started before another one ended (must be 0). **gave up**: times acquire returned false or threw, ' +
      'its retries run out or on an error such as a deadlock (the worker then asks again; the errors are listed below the table).',
    '',
  ]
  for (const backend of BACKENDS) {
    const rows = result.rows.filter((row) => row.contender.backend === backend)
    if (rows.length === 0) continue
    const baseline = rows.find((row) => row.contender.role === 'baseline')
    parts.push(`### ${BACKEND_LABELS[backend]}`, '')
    parts.push(
      table(
        [
          'contender',
          'retry',
          'cs/s',
          'vs baseline',
          'handoffs/s',
          'served',
          'p50 wait',
          'p99 wait',
          'round trips/cs',
          ...(backend === 'redis' ? ['server calls/cs'] : []),
          'overlaps',
          'gave up',
        ],
        rows.map((row) => {
          const label = [name(row.contender), row.mode === 'fast' ? '10 ms' : 'default']
          if (row.windows.length === 0) {
            return [...label, `failed: ${row.error ?? 'no window'}`]
          }
          const merged = mergeWindows(row)
          return [
            ...label,
            rate(merged.csPerSecond),
            baseline && row !== baseline ? ratio(contendedRatio(row, baseline)) : 'baseline',
            rate(merged.handoffsPerSecond),
            `${merged.served}/${row.workers}${merged.stuck ? ` (${merged.stuck} stuck)` : ''}`,
            duration(merged.waitP50),
            duration(merged.waitP99),
            backend === 'memory' ? '—' : perUnit(merged.clientCallsPerCs),
            ...(backend === 'redis' ? [perUnit(merged.serverCallsPerCs)] : []),
            String(merged.overlaps),
            String(merged.gaveUp),
          ]
        })
      ),
      ''
    )
    const errors = rows.flatMap((row) =>
      [...(row.error ? [row.error] : []), ...row.errors].map(
        (message) => `- ${row.contender.label} (${row.mode}): ${message}`
      )
    )
    if (errors.length > 0) parts.push('Errors seen:', '', ...errors, '')
  }
  return parts.join('\n')
}

/**
 * Contenders of ours measured against the same goals as the main one of
 * their backend, by the suffix their goals get
 */
const OURS_VARIANTS: Record<string, string> = {
  'ours-redis-nofencing': ' (fencing: false)',
  'ours-memory-events': ' (emitter without listeners)',
}

function variantOf(contender: Contender): string {
  return OURS_VARIANTS[contender.id] ?? ''
}

/**
 * The goal of ours on the backend, or of one of its variants (`oursId`)
 */
function throughputGoal(
  result: ThroughputResult | undefined,
  scenario: string,
  backend: Backend,
  minimum: number,
  oursId?: string
): Goal | null {
  const rows = result?.rows.filter((row) => row.contender.backend === backend) ?? []
  const ours = rows.find((row) =>
    oursId
      ? row.contender.id === oursId
      : row.contender.role === 'ours' && variantOf(row.contender) === ''
  )
  const baseline = rows.find((row) => row.contender.role === 'baseline')
  if (!ours || !baseline) return null
  return ratioGoal(
    `${BACKEND_LABELS[backend]} ${scenario} ≥ ${minimum.toFixed(2)}x ${baselineOf(backend).label}${variantOf(ours.contender)}`,
    ours,
    baseline,
    minimum
  )
}

/**
 * `row` against `reference`, round by round, as a goal of `minimum`x
 */
function ratioGoal(
  goal: string,
  row: ThroughputRow,
  reference: ThroughputRow,
  minimum: number
): Goal {
  if (row.error || reference.error) {
    return { goal, measured: `not measured: ${row.error ?? reference.error}`, met: null }
  }
  const value = ratioToBaseline(row, reference)
  return {
    goal,
    measured: `${ratio(value)} (p50 latency: ${ratio(p50Ratio(row, reference))})`,
    met: value >= minimum,
  }
}

function contendedGoals(result: ContendedResult | undefined): Goal[] {
  const found: Goal[] = []
  for (const backend of BACKENDS) {
    const rows = result?.rows.filter((row) => row.contender.backend === backend) ?? []
    const baseline = rows.find((row) => row.contender.role === 'baseline')
    if (!baseline) continue
    for (const ours of rows) {
      if (ours.contender.role !== 'ours' || ours.mode !== 'default') continue
      found.push(...contendedGoalsOf(ours, baseline, backend))
    }
  }
  const oursRows = result?.rows.filter((row) => row.contender.role === 'ours') ?? []
  if (oursRows.length > 0) {
    const overlaps = oursRows.reduce((total, row) => total + mergeWindowsSafe(row), 0)
    found.push({
      goal: 'adonis-lock: 0 overlapping critical sections (every store, every mode)',
      measured: String(overlaps),
      met: overlaps === 0,
    })
  }
  return found
}

/**
 * The contended goals of one contender of ours, in its default retry mode
 */
function contendedGoalsOf(ours: ContendedRow, baseline: ContendedRow, backend: Backend): Goal[] {
  const label = `${BACKEND_LABELS[backend]} contended, default retry${variantOf(ours.contender)}:`
  if (ours.windows.length === 0 || baseline.windows.length === 0) {
    return [
      {
        goal: `${label} all goals`,
        measured: `not measured: ${ours.error ?? baseline.error}`,
        met: null,
      },
    ]
  }
  const mine = mergeWindows(ours)
  const raw = mergeWindows(baseline)
  const found: Goal[] = [
    {
      goal: `${label} all ${ours.workers} workers served`,
      measured: `${mine.served}/${ours.workers}`,
      met: mine.served === ours.workers,
    },
    {
      goal: `${label} p99 wait ≤ raw 10 ms polling`,
      measured: `${duration(mine.waitP99)} vs ${duration(raw.waitP99)}`,
      met: mine.waitP99 <= raw.waitP99,
    },
  ]
  if (backend === 'redis') {
    const value = contendedRatio(ours, baseline)
    found.push({
      goal: `${label} critical sections/s ≥ raw 10 ms polling`,
      measured: ratio(value),
      met: value >= 1,
    })
  }
  if (backend !== 'memory') {
    found.push({
      goal: `${label} fewer round trips per critical section than raw polling`,
      measured: `${perUnit(mine.clientCallsPerCs)} vs ${perUnit(raw.clientCallsPerCs)}`,
      met: mine.clientCallsPerCs < raw.clientCallsPerCs,
    })
  }
  if (mine.serverCallsPerCs !== null && raw.serverCallsPerCs !== null) {
    found.push({
      goal: `${label} fewer server-side commands (incl. inside Lua) per critical section than raw polling`,
      measured: `${perUnit(mine.serverCallsPerCs)} vs ${perUnit(raw.serverCallsPerCs)}`,
      met: mine.serverCallsPerCs < raw.serverCallsPerCs,
    })
  }
  return found
}

/**
 * Critical sections/s of ours against a peer's, each retry mode against
 * the same mode of the peer (when both ran)
 */
function peerContendedGoals(
  result: ContendedResult | undefined,
  backend: Backend,
  peerId: string,
  minimum: number
): Goal[] {
  const found: Goal[] = []
  const rows = result?.rows.filter((row) => row.contender.backend === backend) ?? []
  for (const mode of ['default', 'fast'] as const) {
    const ours = rows.find(
      (row) => row.contender.role === 'ours' && variantOf(row.contender) === '' && row.mode === mode
    )
    const peer = rows.find((row) => row.contender.id === peerId && row.mode === mode)
    if (!ours || !peer) continue
    const goal = `${BACKEND_LABELS[backend]} contended, ${mode === 'default' ? 'default retry' : '10 ms retry'}: critical sections/s ≥ ${minimum.toFixed(2)}x ${peer.contender.label}`
    if (ours.windows.length === 0 || peer.windows.length === 0) {
      found.push({ goal, measured: `not measured: ${ours.error ?? peer.error}`, met: null })
      continue
    }
    const value = contendedRatio(ours, peer)
    found.push({
      goal,
      measured: `${ratio(value)} (${rate(mergeWindows(ours).csPerSecond)} vs ${rate(mergeWindows(peer).csPerSecond)})`,
      met: value >= minimum,
    })
  }
  return found
}

function mergeWindowsSafe(row: ContendedRow): number {
  return row.windows.length === 0 ? 0 : mergeWindows(row).overlaps
}

/**
 * Events nobody listens to cost nothing: ours with the app's emitter and
 * no listener against ours without an emitter, round by round. Below 1x
 * by noise alone half of the time, hence the margin.
 */
function unusedEventsGoal(result: ThroughputResult | undefined, scenario: string): Goal | null {
  const rows = result?.rows ?? []
  const withEmitter = rows.find((row) => row.contender.id === 'ours-memory-events')
  const without = rows.find((row) => row.contender.id === 'ours-memory')
  if (!withEmitter || !without) return null
  return ratioGoal(
    `Memory ${scenario}: events without listeners ≥ 0.95x adonis-lock (memory) without an emitter`,
    withEmitter,
    without,
    0.95
  )
}

export function goals(report: Report): Goal[] {
  return [
    throughputGoal(report.sequential, 'sequential', 'redis', 0.97),
    throughputGoal(report.sequential, 'sequential', 'redis', 0.97, 'ours-redis-nofencing'),
    throughputGoal(report.concurrent, '64 concurrent', 'redis', 0.97),
    throughputGoal(report.concurrent, '64 concurrent', 'redis', 0.97, 'ours-redis-nofencing'),
    throughputGoal(report.sequential, 'sequential', 'memory', 0.5),
    throughputGoal(report.concurrent, '64 concurrent', 'memory', 0.5),
    unusedEventsGoal(report.sequential, 'sequential'),
    unusedEventsGoal(report.concurrent, '64 concurrent'),
    ...(['postgres', 'mysql', 'sqlite'] as const).flatMap((backend) => [
      throughputGoal(report.sequential, 'sequential', backend, 1),
      throughputGoal(report.concurrent, '64 concurrent', backend, 1),
    ]),
    ...contendedGoals(report.contended),
    ...(['postgres', 'mysql', 'sqlite'] as const).flatMap((backend) =>
      peerContendedGoals(report.contended, backend, `verrou-${backend}`, 1.5)
    ),
  ].filter((goal): goal is Goal => goal !== null)
}

function environmentSection(report: Report): string {
  const env = report.environment
  const load = (values: number[] | undefined) =>
    values ? values.map((value) => value.toFixed(2)).join(' / ') : 'n/a'
  return [
    '## Environment',
    '',
    table(
      ['', ''],
      [
        ['date', env.date],
        [
          'command',
          `\`${report.command}\` (${report.mode}, ${Math.round(report.durationMs / 1000)} s)`,
        ],
        ['node', env.node],
        ['CPU', `${env.cpu} × ${env.cores}, ${env.memoryGiB} GiB`],
        ['OS', env.platform],
        ['Redis', env.redis ? `${env.redis} (private redis-server started by the bench)` : 'n/a'],
        ['PostgreSQL', env.postgres ? `${env.postgres} (shared server, own database)` : 'n/a'],
        ['MariaDB', env.mysql ? `${env.mysql} (shared server, own database)` : 'n/a'],
        ['SQLite', env.sqlite ? `${env.sqlite} (a file in tmp/, default journal mode)` : 'n/a'],
        [
          'packages',
          Object.entries(env.packages)
            .map(([pkg, version]) => `${pkg} ${version}`)
            .join(', '),
        ],
        ['load average (1/5/15 min) before', load(env.loadBefore)],
        ['load average (1/5/15 min) after', load(env.loadAfter)],
      ],
      'left'
    ),
    '',
  ].join('\n')
}

export function renderReport(report: Report, analysis: string | null): string {
  const parts = [
    '# Benchmark results',
    '',
    'Written by `npm run bench` (the last full run). Every contender ran in the same invocation, ',
    'taking turns round after round, and is compared with the raw baseline of its backend **from the same run**. ',
    'Absolute numbers depend on the machine; the ratios are the point.',
    '',
    environmentSection(report),
  ]
  const unavailable = [
    ...report.missing,
    ...[...report.unavailable].map(([id, reason]) => `${id}: ${reason}`),
  ]
  if (unavailable.length > 0) {
    parts.push('Not measured in this run:', '', ...unavailable.map((line) => `- ${line}`), '')
  }

  const list = goals(report)
  parts.push(
    '## Goals',
    '',
    table(
      ['goal', 'measured', 'met'],
      list.map((goal) => [
        goal.goal,
        goal.measured,
        goal.met === null ? 'not measured' : goal.met ? 'yes' : '**no**',
      ]),
      'left'
    ),
    ''
  )
  if (analysis) parts.push(analysis.trim(), '')

  if (report.sequential) {
    parts.push(
      throughputSection(
        'Sequential acquire + release',
        `One loop acquiring and releasing one free key: ${report.sequential.spec.rounds} round(s) of ${report.sequential.spec.windowMs} ms per contender. ` +
          'p50/p99 are per pair (acquire + release); **vs baseline** is the median over rounds of the ratio to the baseline in the same round (higher is faster).',
        report.sequential
      )
    )
  }
  if (report.concurrent) {
    parts.push(
      throughputSection(
        `${report.concurrent.spec.loops} concurrent loops on distinct keys`,
        `${report.concurrent.spec.loops} loops in one process, each acquiring and releasing its own key: ` +
          `${report.concurrent.spec.rounds} round(s) of ${report.concurrent.spec.windowMs} ms per contender. PostgreSQL and MariaDB contenders each use a pool of the same size, SQLite ones one connection each.`,
        report.concurrent
      )
    )
  }
  if (report.contended) parts.push(contendedSection(report.contended))

  parts.push('## Contenders', '')
  const contenders = new Map<string, Contender>()
  for (const result of [report.sequential, report.concurrent]) {
    for (const row of result?.rows ?? []) contenders.set(row.contender.id, row.contender)
  }
  for (const row of report.contended?.rows ?? []) contenders.set(row.contender.id, row.contender)
  for (const contender of contenders.values()) {
    parts.push(
      `- **${contender.label}** (\`${contender.id}\`, ${contender.role}): ${contender.notes}`
    )
  }
  parts.push('')
  return parts.join('\n')
}

export const ANALYSIS_START = '<!-- analysis: kept across runs, written by hand -->'
export const ANALYSIS_END = '<!-- /analysis -->'

/**
 * The hand-written analysis of a previous results file, kept when the
 * file is rewritten
 */
export function extractAnalysis(previous: string | null): string | null {
  if (!previous) return null
  const start = previous.indexOf(ANALYSIS_START)
  const end = previous.indexOf(ANALYSIS_END)
  if (start === -1 || end === -1 || end < start) return null
  return previous.slice(start, end + ANALYSIS_END.length)
}
