import { test } from '@japa/runner'
import { contenderById } from '../benchmarks/contenders/main.ts'
import { chartSpecs, renderSvg } from '../benchmarks/lib/charts.ts'
import {
  contendedGoals,
  contendedPeerGoal,
  goals,
  throughputGoal,
} from '../benchmarks/lib/goals.ts'
import type { Report } from '../benchmarks/lib/report.ts'
import { Samples } from '../benchmarks/lib/stats.ts'
import {
  ceilingPerSecond,
  shareOfCeiling,
  waitLimitMs,
  type ContendedRow,
  type ContendedWindow,
} from '../benchmarks/scenarios/contended.ts'
import type { ThroughputRow } from '../benchmarks/scenarios/throughput.ts'

function throughputRow(id: string, rates: number[]): ThroughputRow {
  const latency = new Samples()
  for (const rate of rates) latency.push(1000 / rate)
  return {
    contender: contenderById(id),
    rates,
    pairs: rates.length * 100,
    elapsedMs: 1000,
    latency,
    storeCalls: 0,
  }
}

function contendedWindow(overrides: Partial<ContendedWindow>): ContendedWindow {
  const waits = new Samples()
  for (let wait = 1; wait <= 100; wait++) waits.push(wait)
  return {
    windowMs: 1000,
    sections: 800,
    handoffs: 799,
    served: 32,
    waits,
    overlaps: 0,
    clientCalls: 0,
    serverCalls: null,
    gaveUp: 0,
    releaseErrors: 0,
    stuck: 0,
    criticalMs: 1,
    roundTripMs: 0.25,
    ...overrides,
  }
}

function contendedRow(id: string, mode: 'default' | 'fast', windows: ContendedWindow[]) {
  return {
    contender: contenderById(id),
    mode,
    workers: 32,
    processes: 2,
    windows,
    errors: [],
  } satisfies ContendedRow
}

function report(parts: Partial<Report>): Report {
  return {
    mode: 'quick',
    command: 'npm run bench',
    environment: {
      date: '',
      node: '',
      cpu: '',
      cores: 2,
      memoryGiB: 1,
      platform: '',
      packages: {},
      loadBefore: [0, 0, 0],
      loadAtStart: [],
      redis: null,
      postgres: null,
      mysql: null,
      sqlite: null,
    },
    unavailable: new Map(),
    missing: [],
    durationMs: 0,
    ...parts,
  }
}

test.group('Benchmark goals', () => {
  test('the ceiling is one critical section and one round trip per lock holder', ({ assert }) => {
    assert.equal(ceilingPerSecond(1, 0.25), 800)
    assert.closeTo(waitLimitMs(32, 1, 0.25), 80, 1e-9)
  })

  test('the share of the ceiling weighs each window by its own s and c', ({ assert }) => {
    const share = shareOfCeiling([
      { windowMs: 1000, sections: 800, criticalMs: 1, roundTripMs: 0.25 },
      { windowMs: 2000, sections: 800, criticalMs: 1.75, roundTripMs: 0.25 },
    ])
    assert.closeTo(share, 1600 / (800 + 1000), 1e-9)
    assert.isNaN(shareOfCeiling([]))
  })

  test('an uncontended goal is the median of the per-round ratios', ({ assert }) => {
    const goal = throughputGoal(
      {
        spec: { name: 'sequential', loops: 1, rounds: 3, windowMs: 1, warmupMs: 1 },
        rows: [
          throughputRow('raw-redis-tokened', [100, 100, 100]),
          throughputRow('ours-redis', [90, 98, 120]),
        ],
      },
      'sequential',
      'ours-redis',
      'raw-redis-tokened',
      0.97
    )
    assert.equal(goal?.met, true)
    assert.match(goal!.measured, /^0\.98x/)
  })

  test('contended goals: share with every worker served, and the p99 wait', ({ assert }) => {
    const spec = {
      rounds: 1,
      windowMs: 1000,
      workers: 32,
      processes: 2,
      criticalSectionMs: 1,
      drainMs: 0,
    }
    const served = contendedGoals(
      { spec, rows: [contendedRow('ours-redis', 'default', [contendedWindow({})])] },
      'redis'
    )
    assert.deepEqual(
      served.map((goal) => goal.met),
      [true, false]
    )
    assert.include(served[1].measured, 'limit 80.00 ms')

    const starved = contendedGoals(
      {
        spec,
        rows: [contendedRow('ours-mysql', 'default', [contendedWindow({ served: 31 })])],
      },
      'mysql'
    )
    assert.deepEqual(
      starved.map((goal) => goal.met),
      [false, 'reported']
    )
  })

  test('memory is compared with async-mutex round by round', ({ assert }) => {
    const spec = {
      rounds: 2,
      windowMs: 1000,
      workers: 32,
      processes: 1,
      criticalSectionMs: 1,
      drainMs: 0,
    }
    const goal = contendedPeerGoal(
      {
        spec,
        rows: [
          contendedRow('ours-memory', 'default', [
            contendedWindow({ sections: 700 }),
            contendedWindow({ sections: 800 }),
          ]),
          contendedRow('async-mutex', 'default', [
            contendedWindow({ sections: 800 }),
            contendedWindow({ sections: 800 }),
          ]),
        ],
      },
      'ours-memory',
      'async-mutex',
      1
    )
    assert.equal(goal?.met, false)
    assert.match(goal!.measured, /^0\.94x/)
  })

  test('the goals table lists only what ran', ({ assert }) => {
    assert.deepEqual(goals(report({})), [])
  })
})

test.group('Benchmark charts', () => {
  test('renders the charts of a report to SVG', async ({ assert }) => {
    const charts = chartSpecs(
      report({
        sequential: {
          spec: { name: 'sequential', loops: 1, rounds: 2, windowMs: 1, warmupMs: 1 },
          rows: [
            throughputRow('raw-map', [100, 100]),
            throughputRow('ours-memory', [80, 90]),
            throughputRow('async-mutex', [70, 75]),
          ],
        },
        contended: {
          spec: {
            rounds: 1,
            windowMs: 1000,
            workers: 32,
            processes: 1,
            criticalSectionMs: 1,
            drainMs: 0,
          },
          rows: [
            contendedRow('ours-memory', 'default', [contendedWindow({})]),
            contendedRow('async-mutex', 'default', [contendedWindow({ sections: 790 })]),
          ],
        },
      })
    )
    assert.deepEqual(
      charts.map((chart) => chart.file),
      ['uncontended.svg', 'contended_ceiling.svg', 'contended_waits.svg']
    )
    for (const chart of charts) {
      const svg = await renderSvg(chart.spec)
      assert.match(svg, /^<svg /)
      assert.include(svg, 'async-mutex')
    }
  }).timeout(30_000)
})
