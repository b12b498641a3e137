/**
 * The "compared with <commit>" table of a `--compare` run: each current
 * `ours` row next to its twin running the code of that commit, both
 * against the same raw baseline, and the current code against the twin
 * round by round
 */
import { referenceOf } from '../contenders/main.ts'
import type { Contender } from '../contenders/contender.ts'
import { contendedRatio, type ContendedRow } from '../scenarios/contended.ts'
import { ratioToBaseline, type ThroughputResult } from '../scenarios/throughput.ts'
import { ratio } from './goals.ts'
import type { Report } from './report.ts'
import { Samples } from './stats.ts'

export interface ComparedLine {
  scenario: string
  contender: Contender
  /**
   * Current and twin, each against the raw baseline (NaN: not measured)
   */
  current: number
  compared: number
  /**
   * Median over rounds of the current rate divided by the twin's rate of
   * the same round (> 1: the current code is faster), and the 25th and
   * 75th percentiles of those per-round ratios
   */
  change: number
  spread: [number, number]
}

function spreadOf(values: number[]): [number, number] {
  const samples = new Samples()
  samples.append(values.filter((value) => Number.isFinite(value)))
  return [samples.quantile(0.25), samples.quantile(0.75)]
}

function throughputLines(scenario: string, result: ThroughputResult | undefined) {
  const rows = result?.rows ?? []
  return rows.flatMap((twin): ComparedLine[] => {
    const current = rows.find((row) => row.contender.id === twin.contender.compared?.of)
    const baseline = rows.find((row) => row.contender === referenceOf(twin.contender))
    if (!current || !baseline) return []
    return [
      {
        scenario,
        contender: current.contender,
        current: ratioToBaseline(current, baseline),
        compared: ratioToBaseline(twin, baseline),
        change: ratioToBaseline(current, twin),
        spread: spreadOf(current.rates.map((rate, round) => rate / twin.rates[round])),
      },
    ]
  })
}

function contendedLines(rows: ContendedRow[]) {
  const perSecond = (row: ContendedRow) =>
    row.windows.map((window) => window.sections / window.windowMs)
  return rows.flatMap((twin): ComparedLine[] => {
    const current = rows.find(
      (row) => row.contender.id === twin.contender.compared?.of && row.mode === twin.mode
    )
    const baseline = rows.find(
      (row) => row.contender.backend === twin.contender.backend && row.contender.role === 'baseline'
    )
    if (!current || current.windows.length === 0 || twin.windows.length === 0) return []
    const twinRates = perSecond(twin)
    return [
      {
        scenario: `contended (${twin.mode === 'fast' ? '10 ms' : 'default'})`,
        contender: current.contender,
        current: baseline ? contendedRatio(current, baseline) : Number.NaN,
        compared: baseline ? contendedRatio(twin, baseline) : Number.NaN,
        change: contendedRatio(current, twin),
        spread: spreadOf(perSecond(current).map((rate, round) => rate / twinRates[round])),
      },
    ]
  })
}

export function comparedLines(report: Report): ComparedLine[] {
  return [
    ...throughputLines('sequential', report.sequential),
    ...throughputLines('64 loops', report.concurrent),
    ...contendedLines(report.contended?.rows ?? []),
  ]
}

/**
 * The section, or null when the run compared nothing
 */
export function comparedSection(report: Report): string | null {
  if (!report.compared) return null
  const { rev, sha } = report.compared
  const lines = comparedLines(report)
  const named = rev === sha ? `\`${sha}\`` : `\`${rev}\` (\`${sha}\`)`
  return [
    `## Compared with ${sha}`,
    '',
    `Each row of adonis-lock ran next to a twin running the package's code as it was at ${named} ` +
      '(its own benchmarks/contenders/, on the node_modules of this checkout), taking turns with it in the same rounds. ' +
      `**vs baseline**: both against the same raw baseline, as in the tables below. **now / ${sha}**: the median over rounds ` +
      "of the current code's rate divided by the twin's in the same round (above 1: the current code is faster); " +
      '**middle half of rounds**: the 25th to 75th percentile of those per-round ratios, the noise of this run.',
    '',
    `| scenario | contender | now vs baseline | ${sha} vs baseline | now / ${sha} | middle half of rounds |`,
    '| --- | --- | ---: | ---: | ---: | ---: |',
    ...lines.map((line) =>
      [
        '',
        line.scenario,
        line.contender.label,
        ratio(line.current),
        ratio(line.compared),
        ratio(line.change),
        `${ratio(line.spread[0])} – ${ratio(line.spread[1])}`,
        '',
      ]
        .join(' | ')
        .trim()
    ),
    '',
  ].join('\n')
}
