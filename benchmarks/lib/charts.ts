/**
 * The charts of the results file, as Vega-Lite specs built from the
 * report, rendered to SVG in Node by Vega (headless View, no canvas)
 */
import { writeFile } from 'node:fs/promises'
import * as vega from 'vega'
import { compile, type TopLevelSpec } from 'vega-lite'
import { BACKEND_LABELS, BACKENDS, referenceOf } from '../contenders/main.ts'
import { mergeWindows } from '../scenarios/contended.ts'
import { ratioToBaseline } from '../scenarios/throughput.ts'
import { CONTENDED_SHARE } from './goals.ts'
import type { Report } from './report.ts'

export interface Chart {
  file: string
  title: string
  spec: TopLevelSpec
}

const WAIT_FLOOR_MS = 0.001

const FONT = {
  labelFont: 'sans-serif',
  titleFont: 'sans-serif',
  labelFontSize: 11,
  titleFontSize: 12,
}

const CONFIG = { axis: FONT, header: FONT, legend: FONT, axisY: { labelLimit: 400 } }

const LOG_TICKS = [0.001, 0.01, 0.1, 1, 10, 100, 1000, 10_000, 100_000]

/**
 * Throughput of each contender as a ratio to its raw baseline, per store,
 * for the sequential and 64-loop runs
 */
export function uncontendedData(report: Report) {
  const data: Array<{ store: string; contender: string; scenario: string; ratio: number }> = []
  for (const [scenario, result] of [
    ['sequential', report.sequential],
    ['64 loops', report.concurrent],
  ] as const) {
    for (const row of result?.rows ?? []) {
      if (row.contender.role === 'baseline' || row.error) continue
      const reference = referenceOf(row.contender)
      const baseline = result!.rows.find((candidate) => candidate.contender === reference)
      if (!baseline || baseline.error) continue
      const value = ratioToBaseline(row, baseline)
      if (!Number.isFinite(value)) continue
      data.push({
        store: BACKEND_LABELS[row.contender.backend],
        contender: row.contender.reference
          ? `${row.contender.label} (vs ${reference.id})`
          : row.contender.label,
        scenario,
        ratio: value,
      })
    }
  }
  return data
}

/**
 * Per contended row: its share of the ceiling, and its wait quantiles
 */
export function contendedData(report: Report) {
  const rows = (report.contended?.rows ?? []).filter((row) => row.windows.length > 0)
  return rows.map((row) => {
    const merged = mergeWindows(row)
    const wait = (p: number) => Math.max(WAIT_FLOOR_MS, merged.waits.quantile(p))
    return {
      store: BACKEND_LABELS[row.contender.backend],
      contender: `${row.contender.label} (${row.mode === 'fast' ? '10 ms' : 'default'})`,
      ours: row.contender.role === 'ours',
      share: merged.share,
      label:
        `${Math.round(merged.share * 100)} %, ${merged.served}/${row.workers} served` +
        (merged.overlaps > 0 ? `, ${merged.overlaps} overlaps` : ''),
      csPerSecond: merged.csPerSecond,
      ceiling: merged.ceiling,
      p50: wait(0.5),
      p90: wait(0.9),
      p99: wait(0.99),
      max: wait(1),
      /**
       * The wait limit of the store's goal: adonis-lock's, default retry
       */
      limit: row.contender.role === 'ours' && row.mode === 'default' ? merged.waitLimit : null,
    }
  })
}

const CONTENDER = { field: 'contender', type: 'nominal', title: null, sort: null } as const

const STORE_ORDER = BACKENDS.map((backend) => BACKEND_LABELS[backend])

export function chartSpecs(report: Report): Chart[] {
  const charts: Chart[] = []
  const uncontended = uncontendedData(report)
  if (uncontended.length > 0) {
    charts.push({
      file: 'uncontended.svg',
      title: 'Uncontended acquire + release: throughput as a ratio to the raw baseline',
      spec: {
        $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
        title:
          'Uncontended pairs/s ÷ the raw baseline of the store (median of rounds; 1 = as fast)',
        data: { values: uncontended },
        config: CONFIG,
        facet: {
          row: { field: 'store', type: 'nominal', sort: STORE_ORDER, title: null },
        },
        resolve: { scale: { y: 'independent' } },
        spec: {
          width: 360,
          layer: [
            {
              mark: { type: 'bar', height: { band: 0.8 } },
              encoding: {
                y: CONTENDER,
                yOffset: { field: 'scenario', type: 'nominal', sort: ['sequential', '64 loops'] },
                x: { field: 'ratio', type: 'quantitative', title: 'ratio to raw' },
                color: {
                  field: 'scenario',
                  type: 'nominal',
                  title: null,
                  sort: ['sequential', '64 loops'],
                },
              },
            },
            {
              mark: { type: 'rule', color: 'black', strokeDash: [4, 3] },
              encoding: { x: { datum: 1 } },
            },
          ],
        },
      },
    })
  }
  const contended = contendedData(report)
  if (contended.length > 0) {
    charts.push({
      file: 'contended_ceiling.svg',
      title: 'Contended: critical sections per second as a share of the ceiling 1 / (s + c)',
      spec: {
        $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
        title: `Contended cs/s as a share of the ceiling 1 / (s + c) (goal for adonis-lock: ≥ ${CONTENDED_SHARE * 100} %)`,
        data: { values: contended },
        config: CONFIG,
        facet: {
          row: { field: 'store', type: 'nominal', sort: STORE_ORDER, title: null },
        },
        resolve: { scale: { y: 'independent' } },
        spec: {
          width: 360,
          layer: [
            {
              mark: 'bar',
              encoding: {
                y: CONTENDER,
                x: {
                  field: 'share',
                  type: 'quantitative',
                  title: 'share of the ceiling',
                  axis: { format: '%' },
                },
                color: {
                  field: 'ours',
                  type: 'nominal',
                  title: null,
                  scale: { domain: [true, false], range: ['#d62728', '#9ca3af'] },
                  legend: { labelExpr: "datum.value ? 'adonis-lock' : 'raw and peers'" },
                },
              },
            },
            {
              mark: { type: 'text', align: 'left', dx: 4, fontSize: 10 },
              encoding: {
                y: CONTENDER,
                x: { field: 'share', type: 'quantitative' },
                text: { field: 'label' },
              },
            },
            {
              mark: { type: 'rule', color: 'black', strokeDash: [4, 3] },
              encoding: { x: { datum: CONTENDED_SHARE } },
            },
          ],
        },
      },
    })
    charts.push({
      file: 'contended_waits.svg',
      title: 'Contended: wait from asking to holding (p50 to p99, max), against 2 × 32 × (s + c)',
      spec: {
        $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
        title: 'Contended wait: bar p50 → p99, tick p90, ring max; dashed: 2 × workers × (s + c)',
        data: { values: contended },
        config: CONFIG,
        facet: {
          row: { field: 'store', type: 'nominal', sort: STORE_ORDER, title: null },
        },
        resolve: { scale: { y: 'independent' } },
        spec: {
          width: 420,
          layer: [
            {
              mark: { type: 'bar', height: { band: 0.5 } },
              encoding: {
                y: CONTENDER,
                x: {
                  field: 'p50',
                  type: 'quantitative',
                  scale: { type: 'log' },
                  axis: { values: LOG_TICKS },
                  title: 'wait (ms, log scale)',
                },
                x2: { field: 'p99' },
                color: {
                  field: 'ours',
                  type: 'nominal',
                  title: null,
                  scale: { domain: [true, false], range: ['#d62728', '#9ca3af'] },
                  legend: { labelExpr: "datum.value ? 'adonis-lock' : 'raw and peers'" },
                },
              },
            },
            {
              mark: { type: 'tick', color: 'black', thickness: 2 },
              encoding: { y: CONTENDER, x: { field: 'p90', type: 'quantitative' } },
            },
            {
              mark: { type: 'point', color: 'black' },
              encoding: { y: CONTENDER, x: { field: 'max', type: 'quantitative' } },
            },
            {
              mark: { type: 'rule', color: 'black', strokeDash: [4, 3] },
              encoding: { x: { field: 'limit', aggregate: 'min', type: 'quantitative' } },
            },
          ],
        },
      },
    })
  }
  return charts
}

export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  /**
   * Errors only: Vega-Lite warns that the facets' independent y scales
   * share a field, which is what they are meant to do here
   */
  const compiled = compile(spec, { logger: vega.logger(vega.Error) })
  const view = new vega.View(vega.parse(compiled.spec), { renderer: 'none' })
  try {
    return await view.toSVG()
  } finally {
    view.finalize()
  }
}

/**
 * Writes each chart next to `resultsFile`; resolves to the charts written
 */
export async function writeCharts(report: Report, resultsFile: URL): Promise<Chart[]> {
  const charts = chartSpecs(report)
  for (const chart of charts) {
    await writeFile(new URL(chart.file, resultsFile), await renderSvg(chart.spec))
  }
  return charts
}
