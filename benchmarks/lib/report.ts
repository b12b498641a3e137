/**
 * The Markdown report: ratios to the raw baseline of the same backend,
 * measured in the same run, the goals, and the environment
 */
import { BACKEND_LABELS, BACKENDS, referenceOf } from '../contenders/main.ts'
import type { Contender } from '../contenders/contender.ts'
import { mergeWindows, contendedRatio, type ContendedResult } from '../scenarios/contended.ts'
import { p50Ratio, ratioToBaseline, type ThroughputResult } from '../scenarios/throughput.ts'
import { comparedSection } from './compare_report.ts'
import type { Environment } from './environment.ts'
import { duration, goals, oursOverlaps, percent, ratio } from './goals.ts'

export { goals } from './goals.ts'

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
  /**
   * `--compare`: the commit as given and its short hash
   */
  compared?: { rev: string; sha: string }
  /**
   * Charts written next to the results file, linked from it
   */
  charts?: Array<{ file: string; title: string }>
}

const integer = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 })

function rate(value: number): string {
  return Number.isFinite(value) ? integer.format(value) : 'n/a'
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
  return contender.role === 'ours' && !contender.compared
    ? `**${contender.label}**`
    : contender.label
}

function throughputSection(title: string, intro: string, result: ThroughputResult): string {
  const parts = [`## ${title}`, '', intro, '']
  for (const backend of BACKENDS) {
    const rows = result.rows.filter((row) => row.contender.backend === backend)
    if (rows.length === 0) continue
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
          const baseline = rows.find(
            (candidate) => candidate.contender === referenceOf(row.contender)
          )
          const compared = baseline && row.contender.role !== 'baseline'
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
      'its retries run out or on an error such as a deadlock (the worker then asks again; the errors are listed below the table). ' +
      '**of ceiling**: critical sections/s as a share of what one lock can serve at best, `1 / (s + c)`: `s` the mean critical section measured in the window, ' +
      '`c` the median of 100 raw round trips of the backend measured just before it (Redis `PING`, `SELECT 1`; memory: one `await`). ' +
      `**p99 limit**: twice a fair share, \`2 × ${spec.workers} × (s + c)\`.`,
    '',
    `Overlapping critical sections of adonis-lock, every store and retry mode: **${oursOverlaps(result)}** (must be 0).`,
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
          'of ceiling',
          'handoffs/s',
          'served',
          'p50 wait',
          'p99 wait',
          'p99 limit',
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
            percent(merged.share),
            rate(merged.handoffsPerSecond),
            `${merged.served}/${row.workers}${merged.stuck ? ` (${merged.stuck} stuck)` : ''}`,
            duration(merged.waitP50),
            duration(merged.waitP99),
            duration(merged.waitLimit),
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
        [
          'load average (1 min) as each scenario started',
          env.loadAtStart
            .map(([scenario, value]) => `${scenario} ${value.toFixed(2)}`)
            .join(', ') || 'n/a',
        ],
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
    'taking turns round after round, and is compared with the raw baseline doing the same work on its backend **from the same run**; ',
    'contended throughput is compared with what one lock can serve at best, `1 / (s + c)`. ',
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
        goal.met === null
          ? 'not measured'
          : goal.met === 'reported'
            ? 'reported'
            : goal.met
              ? 'yes'
              : '**no**',
      ]),
      'left'
    ),
    ''
  )
  if (analysis) parts.push(analysis.trim(), '')
  const compared = comparedSection(report)
  if (compared) parts.push(compared)
  if (report.charts && report.charts.length > 0) {
    parts.push('## Charts', '')
    for (const chart of report.charts) parts.push(`![${chart.title}](./${chart.file})`, '')
  }

  if (report.sequential) {
    parts.push(
      throughputSection(
        'Sequential acquire + release',
        `One loop acquiring and releasing one free key: ${report.sequential.spec.rounds} round(s) of ${report.sequential.spec.windowMs} ms per contender. ` +
          'p50/p99 are per pair (acquire + release); **vs baseline** is the median over rounds of the ratio to the raw baseline doing the same work, in the same round (higher is faster): ' +
          'adonis-lock (redis) against the tokened script, everything else against the first raw row of its store.',
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
