/**
 * What OpenTelemetry costs when the application registers no SDK: the
 * memory store's uncontended acquire + release with telemetry on (the
 * default) against `telemetry: false`, in interleaved rounds so that the
 * machine's drift hits both alike. Time is the process's CPU time.
 *
 *   node --import=@poppinss/ts-exec benchmarks/telemetry_cost.ts [rounds] [pairs]
 */
import { LockFactory } from '../src/lock_factory.ts'
import { MemoryStore } from '../src/stores/main.ts'
import { interleavedRates } from './lib/cpu_blocks.ts'

const rounds = Number(process.argv[2] ?? 400)
const pairs = Number(process.argv[3] ?? 2000)

/**
 * `control` is `off` again: how far two identical variants drift apart
 * on this machine, the noise floor of the comparison
 */
const store = new MemoryStore()
const rate = await interleavedRates(
  {
    on: new LockFactory(store, { ttl: 30_000, prefix: 'on' }),
    off: new LockFactory(store, { ttl: 30_000, prefix: 'off', telemetry: false }),
    control: new LockFactory(store, { ttl: 30_000, prefix: 'control', telemetry: false }),
  },
  rounds,
  pairs
)

const slower = (name: keyof typeof rate) => ((rate.off / rate[name] - 1) * 100).toFixed(2)
console.log('memory store, uncontended acquire + release, no OpenTelemetry SDK registered')
console.log(`${rounds} interleaved rounds of ${pairs} pairs per variant`)
console.log(`telemetry off:          ${Math.round(rate.off)} pairs/s`)
console.log(`telemetry on:           ${Math.round(rate.on)} pairs/s (${slower('on')} % slower)`)
console.log(
  `off again (noise floor): ${Math.round(rate.control)} pairs/s (${slower('control')} % slower)`
)
