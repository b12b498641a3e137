import { median } from './stats.ts'

/**
 * Anything with `createLock(key)`: a LockFactory of this checkout or of
 * an older commit
 */
export interface Locks {
  createLock(key: string): { acquire(): Promise<boolean>; release(): Promise<void> }
}

/**
 * CPU time (ms) of `pairs` uncontended acquire + release on fresh locks.
 * CPU time rather than wall time: on a busy machine a block descheduled
 * halfway would count the other processes' time as ours.
 */
async function block(locks: Locks, pairs: number): Promise<number> {
  const started = process.cpuUsage()
  for (let i = 0; i < pairs; i++) {
    const lock = locks.createLock(`bench:${i % 1024}`)
    await lock.acquire()
    await lock.release()
  }
  const used = process.cpuUsage(started)
  return (used.user + used.system) / 1000
}

/**
 * Short blocks of each variant in turn, the order rotating every round:
 * drift and warm-up fall on every variant alike. Resolves to pairs per
 * second of CPU time, from the median block of each variant.
 */
export async function interleavedRates<Name extends string>(
  variants: Record<Name, Locks>,
  rounds: number,
  pairs: number
): Promise<Record<Name, number>> {
  const names = Object.keys(variants) as Name[]
  for (const name of names) await block(variants[name], pairs)
  const times = new Map<Name, number[]>(names.map((name) => [name, []]))
  for (let round = 0; round < rounds; round++) {
    for (let i = 0; i < names.length; i++) {
      const name = names[(round + i) % names.length]
      times.get(name)!.push(await block(variants[name], pairs))
    }
  }
  const rates = {} as Record<Name, number>
  for (const name of names) rates[name] = pairs / (median(times.get(name)!) / 1000)
  return rates
}
