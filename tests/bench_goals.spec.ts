import { test } from '@japa/runner'
import type { Contender } from '../benchmarks/contenders/contender.ts'
import { contenderById } from '../benchmarks/contenders/main.ts'
import { chartSpecs, renderSvg } from '../benchmarks/lib/charts.ts'
import { twinOf, withTwins } from '../benchmarks/lib/compare.ts'
import { comparedLines, comparedSection } from '../benchmarks/lib/compare_report.ts'
import {
  contendedGoals,
  contendedPeerGoal,
  goals,
  oursOverlaps,
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

function throughputRow(contender: string | Contender, rates: number[]): ThroughputRow {
  const latency = new Samples()
  for (const rate of rates) latency.push(1000 / rate)
  return {
    contender: typeof contender === 'string' ? contenderById(contender) : contender,
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

function contendedRow(
  contender: string | Contender,
  mode: 'default' | 'fast',
  windows: ContendedWindow[]
) {
  return {
    contender: typeof contender === 'string' ? contenderById(contender) : contender,
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

/**
 * A twin of `id` at commit `abc1234`, with only the default retry mode
 */
function twin(id: string): Contender {
  return twinOf(
    contenderById(id),
    {
      id,
      role: 'ours',
      modes: ['default'],
      open: () => Promise.reject(new Error('not opened in this test')),
    },
    'abc1234'
  )
}

test.group('Benchmark comparison with another commit', () => {
  test('a twin sits right after its current contender, against the same baseline', ({ assert }) => {
    const redis = twin('ours-redis')
    const memory = twin('ours-memory')
    assert.equal(redis.id, 'ours-redis@abc1234')
    assert.equal(redis.label, 'adonis-lock (redis) @abc1234')
    assert.equal(redis.reference, 'raw-redis-tokened')
    assert.deepEqual(redis.modes, ['default'])
    const chosen = ['raw-redis-tokened', 'ours-redis', 'verrou-redis'].map(contenderById)
    assert.deepEqual(
      withTwins(chosen, [memory, redis]).map((contender) => contender.id),
      ['raw-redis-tokened', 'ours-redis', 'ours-redis@abc1234', 'verrou-redis']
    )
  })

  test('the table compares current and twin round by round, outside the goals', ({ assert }) => {
    const spec = { name: 'sequential', loops: 1, rounds: 3, windowMs: 1, warmupMs: 1 }
    const windowSpec = {
      rounds: 2,
      windowMs: 1000,
      workers: 32,
      processes: 2,
      criticalSectionMs: 1,
      drainMs: 0,
    }
    const compared = report({
      compared: { rev: 'main~3', sha: 'abc1234' },
      sequential: {
        spec,
        rows: [
          throughputRow('raw-redis-tokened', [100, 200, 100]),
          throughputRow('ours-redis', [90, 190, 120]),
          throughputRow(twin('ours-redis'), [100, 200, 100]),
        ],
      },
      contended: {
        spec: windowSpec,
        rows: [
          contendedRow('raw-redis', 'fast', [contendedWindow({}), contendedWindow({})]),
          contendedRow('ours-redis', 'default', [
            contendedWindow({ sections: 800 }),
            contendedWindow({ sections: 760 }),
          ]),
          contendedRow(twin('ours-redis'), 'default', [
            contendedWindow({ sections: 800, overlaps: 3 }),
            contendedWindow({ sections: 800, overlaps: 1 }),
          ]),
        ],
      },
    })
    const [sequential, contended] = comparedLines(compared)
    assert.equal(sequential.scenario, 'sequential')
    assert.equal(sequential.contender.id, 'ours-redis')
    assert.closeTo(sequential.current, 0.95, 1e-9)
    assert.closeTo(sequential.compared, 1, 1e-9)
    assert.closeTo(sequential.change, 0.95, 1e-9)
    assert.deepEqual(sequential.spread, [0.9, 1.2])
    assert.equal(contended.scenario, 'contended (default)')
    assert.closeTo(contended.change, 0.975, 1e-9)
    assert.include(comparedSection(compared)!, '## Compared with abc1234')
    assert.include(comparedSection(compared)!, '`main~3` (`abc1234`)')
    assert.isNull(comparedSection(report({})))

    assert.notInclude(
      goals(compared)
        .map((goal) => goal.goal)
        .join('\n'),
      '@abc1234'
    )
    assert.equal(oursOverlaps(compared.contended), 0)
  })
})
