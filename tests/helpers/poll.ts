import { sleep } from '../../src/wait.ts'

/**
 * Checks `condition` every `every` ms until it holds or `ms` have passed,
 * and tells whether it held. The machine may be slow: callers give a
 * generous `ms` rather than rely on timing.
 */
export async function pollUntil(
  condition: () => boolean | Promise<boolean>,
  ms: number,
  every: number
): Promise<boolean> {
  const deadline = Date.now() + ms
  while (true) {
    if (await condition()) return true
    if (Date.now() >= deadline) return false
    await sleep(every)
  }
}
