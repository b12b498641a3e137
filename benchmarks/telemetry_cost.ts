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
import { median } from './lib/stats.ts'

const rounds = Number(process.argv[2] ?? 400)
const pairs = Number(process.argv[3] ?? 2000)

/**
 * `control` is `off` again: how far two identical variants drift apart
 * on this machine, the noise floor of the comparison
 */
const store = new MemoryStore()
const variants = {
  on: new LockFactory(store, { ttl: 30_000, prefix: 'on' }),
  off: new LockFactory(store, { ttl: 30_000, prefix: 'off', telemetry: false }),
  control: new LockFactory(store, { ttl: 30_000, prefix: 'control', telemetry: false }),
}
type Variant = keyof typeof variants
const names = Object.keys(variants) as Variant[]

/**
 * CPU time rather than wall time: on a busy machine a block descheduled
 * halfway would count the other processes' time as ours
 */
async function elapsed(factory: LockFactory): Promise<number> {
  const started = process.cpuUsage()
  for (let i = 0; i < pairs; i++) {
    const lock = factory.createLock(`bench:${i % 1024}`)
    await lock.acquire()
    await lock.release()
  }
  const used = process.cpuUsage(started)
  return (used.user + used.system) / 1000
}

for (const name of names) await elapsed(variants[name])

/**
 * Short blocks, the order rotating every round: drift and warm-up fall
 * on every variant alike. Per variant, the median block time.
 */
const times: Record<Variant, number[]> = { on: [], off: [], control: [] }
for (let round = 0; round < rounds; round++) {
  for (let i = 0; i < names.length; i++) {
    const name = names[(round + i) % names.length]
    times[name].push(await elapsed(variants[name]))
  }
}

const rate = (name: Variant) => pairs / (median(times[name]) / 1000)
const slower = (name: Variant) => ((rate('off') / rate(name) - 1) * 100).toFixed(2)
console.log('memory store, uncontended acquire + release, no OpenTelemetry SDK registered')
console.log(`${rounds} interleaved rounds of ${pairs} pairs per variant`)
console.log(`telemetry off:          ${Math.round(rate('off'))} pairs/s`)
console.log(`telemetry on:           ${Math.round(rate('on'))} pairs/s (${slower('on')} % slower)`)
console.log(
  `off again (noise floor): ${Math.round(rate('control'))} pairs/s (${slower('control')} % slower)`
)
