/**
 * Uncontended acquire + release pairs, in this process: one loop on one
 * key (sequential latency) or many loops on distinct keys (concurrency).
 * Contenders take turns, round after round, so machine noise hits all of
 * them alike.
 */
import type { Contender, LockSession } from '../contenders/contender.ts'
import { Samples, median } from '../lib/stats.ts'
import { callsOf } from '../lib/store_calls.ts'

export interface ThroughputSpec {
  name: string
  /**
   * Concurrent loops, each on its own key
   */
  loops: number
  rounds: number
  windowMs: number
  warmupMs: number
}

export interface ThroughputRow {
  contender: Contender
  /**
   * Pairs per second of each round (NaN where the contender failed)
   */
  rates: number[]
  pairs: number
  elapsedMs: number
  latency: Samples
  storeCalls: number
  error?: string
}

export interface ThroughputResult {
  spec: ThroughputSpec
  rows: ThroughputRow[]
}

/**
 * One acquire+release loop on `key` until `end`; latencies in ms
 */
async function loop(session: LockSession, key: string, end: number, latency: Samples | null) {
  let pairs = 0
  let startedAt = performance.now()
  while (startedAt < end) {
    const release = await session.acquire(key)
    await release()
    const endedAt = performance.now()
    latency?.push(endedAt - startedAt)
    startedAt = endedAt
    pairs++
  }
  return pairs
}

async function window(
  spec: ThroughputSpec,
  contender: Contender,
  session: LockSession,
  durationMs: number,
  latency: Samples | null
) {
  const keys = Array.from(
    { length: spec.loops },
    (_, index) => `bench:${spec.name}:${contender.id}:${index}`
  )
  const callsBefore = callsOf(contender.backend)
  const startedAt = performance.now()
  const end = startedAt + durationMs
  const counts = await Promise.all(keys.map((key) => loop(session, key, end, latency)))
  return {
    pairs: counts.reduce((total, count) => total + count, 0),
    elapsedMs: performance.now() - startedAt,
    calls: callsOf(contender.backend) - callsBefore,
  }
}

export async function runThroughput(
  spec: ThroughputSpec,
  contenders: Contender[],
  sessions: Map<string, LockSession>,
  progress: (line: string) => void
): Promise<ThroughputResult> {
  const rows: ThroughputRow[] = contenders.map((contender) => ({
    contender,
    rates: [],
    pairs: 0,
    elapsedMs: 0,
    latency: new Samples(),
    storeCalls: 0,
  }))

  for (const row of rows) {
    try {
      await window(spec, row.contender, sessions.get(row.contender.id)!, spec.warmupMs, null)
    } catch (error) {
      row.error = (error as Error).message
    }
  }

  for (let round = 0; round < spec.rounds; round++) {
    /**
     * Each round starts with another contender, so none always runs
     * right after the same neighbour
     */
    const order = rows.map((_, index) => rows[(index + round) % rows.length])
    for (const row of order) {
      if (row.error) {
        row.rates.push(Number.NaN)
        continue
      }
      try {
        const result = await window(
          spec,
          row.contender,
          sessions.get(row.contender.id)!,
          spec.windowMs,
          row.latency
        )
        row.pairs += result.pairs
        row.elapsedMs += result.elapsedMs
        row.storeCalls += result.calls
        row.rates.push((result.pairs / result.elapsedMs) * 1000)
      } catch (error) {
        row.error = (error as Error).message
        row.rates.push(Number.NaN)
      }
    }
    progress(
      `${spec.name} round ${round + 1}/${spec.rounds}: ` +
        rows
          .map((row) => `${row.contender.id} ${Math.round(row.rates[round] ?? Number.NaN)}/s`)
          .join(', ')
    )
  }
  return { spec, rows }
}

/**
 * Median over rounds of the row's rate divided by the baseline's rate of
 * the same round
 */
export function ratioToBaseline(row: ThroughputRow, baseline: ThroughputRow): number {
  return median(row.rates.map((rate, round) => rate / baseline.rates[round]))
}

/**
 * The baseline's median latency divided by the row's (higher is faster):
 * less hurt than throughput by a round that the machine's other work
 * slowed down
 */
export function p50Ratio(row: ThroughputRow, baseline: ThroughputRow): number {
  return baseline.latency.quantile(0.5) / row.latency.quantile(0.5)
}
