/**
 * The goals of the benchmark (issue #25): what the library adds over raw
 * code doing the same work, and how close contended throughput comes to
 * what one lock can serve at best
 */
import { BACKEND_LABELS } from '../contenders/main.ts'
import type { Backend } from '../contenders/contender.ts'
import {
  contendedRatio,
  mergeWindows,
  type ContendedResult,
  type ContendedRow,
} from '../scenarios/contended.ts'
import { p50Ratio, ratioToBaseline, type ThroughputResult } from '../scenarios/throughput.ts'
import type { Report } from './report.ts'

export interface Goal {
  goal: string
  measured: string
  /**
   * `null`: not measured; `reported`: shown, with no bar to meet
   */
  met: boolean | null | 'reported'
}

export const CONTENDED_SHARE = 0.9

/**
 * Stores whose p99 wait has a bar; the others only report it (no server
 * push on MariaDB and SQLite: waiters poll)
 */
const WAIT_GOAL: Backend[] = ['redis', 'postgres', 'memory']

const DATABASES = ['postgres', 'mysql', 'sqlite'] as const

export function ratio(value: number): string {
  return Number.isFinite(value) ? `${value.toFixed(2)}x` : 'n/a'
}

export function percent(value: number): string {
  return Number.isFinite(value) ? `${(value * 100).toFixed(1)} %` : 'n/a'
}

/**
 * A duration given in ms, in µs below one ms
 */
export function duration(ms: number): string {
  if (!Number.isFinite(ms)) return 'n/a'
  if (ms < 1) return `${(ms * 1000).toFixed(1)} µs`
  if (ms < 100) return `${ms.toFixed(2)} ms`
  return `${Math.round(ms).toLocaleString('en-US')} ms`
}

/**
 * Uncontended: `oursId` against `referenceId`, round by round
 */
export function throughputGoal(
  result: ThroughputResult | undefined,
  scenario: string,
  oursId: string,
  referenceId: string,
  minimum: number
): Goal | null {
  const ours = result?.rows.find((row) => row.contender.id === oursId)
  const reference = result?.rows.find((row) => row.contender.id === referenceId)
  if (!ours || !reference) return null
  const goal = `${BACKEND_LABELS[ours.contender.backend]} ${scenario}: ${ours.contender.label} ≥ ${minimum.toFixed(2)}x ${reference.contender.label}`
  if (ours.error || reference.error) {
    return { goal, measured: `not measured: ${ours.error ?? reference.error}`, met: null }
  }
  const value = ratioToBaseline(ours, reference)
  return {
    goal,
    measured: `${ratio(value)} (p50 latency: ${ratio(p50Ratio(ours, reference))})`,
    met: value >= minimum,
  }
}

/**
 * Contended, ours in its default retry mode on `backend`: the share of the
 * ceiling with every worker served, and the p99 wait against twice a fair
 * share
 */
export function contendedGoals(result: ContendedResult | undefined, backend: Backend): Goal[] {
  const row = result?.rows.find(
    (candidate) => candidate.contender.id === `ours-${backend}` && candidate.mode === 'default'
  )
  if (!row) return []
  const store = BACKEND_LABELS[backend]
  const shareGoal = `${store} contended: cs/s ≥ ${CONTENDED_SHARE * 100} % of the ceiling 1 / (s + c), ${row.workers}/${row.workers} served`
  const waitGoal = WAIT_GOAL.includes(backend)
    ? `${store} contended: p99 wait ≤ 2 × ${row.workers} × (s + c)`
    : `${store} contended: p99 wait (reported; limit 2 × ${row.workers} × (s + c))`
  if (row.windows.length === 0) {
    const measured = `not measured: ${row.error ?? 'no window'}`
    return [
      { goal: shareGoal, measured, met: null },
      { goal: waitGoal, measured, met: null },
    ]
  }
  const merged = mergeWindows(row)
  const served = `${merged.served}/${row.workers}`
  const within = merged.waitP99 <= merged.waitLimit
  return [
    {
      goal: shareGoal,
      measured:
        `${percent(merged.share)} (${Math.round(merged.csPerSecond)} of ${Math.round(merged.ceiling)} cs/s; ` +
        `s ${duration(merged.criticalMs)}, c ${duration(merged.roundTripMs)}), ${served} served`,
      met: merged.share >= CONTENDED_SHARE && merged.served === row.workers,
    },
    {
      goal: waitGoal,
      measured: `${duration(merged.waitP99)} (limit ${duration(merged.waitLimit)})`,
      met: WAIT_GOAL.includes(backend) ? within : 'reported',
    },
  ]
}

/**
 * Contended critical sections/s of ours against a peer, both in their
 * default retry mode, round by round
 */
export function contendedPeerGoal(
  result: ContendedResult | undefined,
  oursId: string,
  peerId: string,
  minimum: number
): Goal | null {
  const find = (id: string) =>
    result?.rows.find((row) => row.contender.id === id && row.mode === 'default')
  const ours = find(oursId)
  const peer = find(peerId)
  if (!ours || !peer) return null
  const goal = `${BACKEND_LABELS[ours.contender.backend]} contended: ${ours.contender.label} cs/s ≥ ${minimum.toFixed(2)}x ${peer.contender.label}`
  if (ours.windows.length === 0 || peer.windows.length === 0) {
    return { goal, measured: `not measured: ${ours.error ?? peer.error}`, met: null }
  }
  const value = contendedRatio(ours, peer)
  return {
    goal,
    measured: `${ratio(value)} (${Math.round(mergeWindows(ours).csPerSecond)} vs ${Math.round(mergeWindows(peer).csPerSecond)} cs/s)`,
    met: value >= minimum,
  }
}

export function goals(report: Report): Goal[] {
  const uncontended = [
    ['sequential', report.sequential],
    ['64 loops', report.concurrent],
  ] as const
  return [
    ...uncontended.flatMap(([scenario, result]) => [
      throughputGoal(result, scenario, 'ours-redis', 'raw-redis-tokened', 0.97),
      throughputGoal(result, scenario, 'ours-redis-nofencing', 'raw-redis', 0.97),
      throughputGoal(result, scenario, 'ours-redis-nofencing', 'verrou-redis', 0.98),
    ]),
    ...DATABASES.flatMap((backend) =>
      uncontended.flatMap(([scenario, result]) => [
        throughputGoal(result, scenario, `ours-${backend}`, `raw-${backend}`, 1),
        throughputGoal(result, scenario, `ours-${backend}`, `verrou-${backend}`, 1.2),
      ])
    ),
    ...uncontended.map(([scenario, result]) =>
      throughputGoal(result, scenario, 'ours-memory', 'async-mutex', 1)
    ),
    ...uncontended.map(([scenario, result]) =>
      throughputGoal(result, scenario, 'ours-memory', 'ours-memory-no-telemetry', 0.98)
    ),
    ...(['redis', 'postgres', 'mysql', 'sqlite', 'memory'] as const).flatMap((backend) =>
      contendedGoals(report.contended, backend)
    ),
    contendedPeerGoal(report.contended, 'ours-memory', 'async-mutex', 1),
  ].filter((goal): goal is Goal => goal !== null)
}

/**
 * Critical sections of ours that overlapped, over every store and mode
 * (the current code, not the twins of `--compare`): a correctness check
 * of the run, not a goal
 */
export function oursOverlaps(result: ContendedResult | undefined): number {
  return (result?.rows ?? [])
    .filter(
      (row: ContendedRow) =>
        row.contender.role === 'ours' && !row.contender.compared && row.windows.length > 0
    )
    .reduce((total, row) => total + mergeWindows(row).overlaps, 0)
}
