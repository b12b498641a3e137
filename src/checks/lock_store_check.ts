import { BaseCheck, Result } from '@adonisjs/core/health'
import type { HealthCheckResult } from '@adonisjs/core/types/health'
import type { LockManager } from '../lock_manager.ts'
import { settleWithin } from '../wait.ts'

const PROBE_TIMEOUT = 5000

/**
 * Health check doing a real round trip (acquire + release of a probe
 * lock) on the given lock stores, every configured one by default
 *
 * ```ts
 * new HealthChecks().register([new LockStoreCheck(locks)])
 * ```
 */
export class LockStoreCheck extends BaseCheck {
  name: string
  #locks: LockManager<any>
  #storeNames?: string[]

  constructor(locks: LockManager<any>, storeNames?: string | string[]) {
    super()
    this.#locks = locks
    this.#storeNames = typeof storeNames === 'string' ? [storeNames] : storeNames
    this.name = `Lock store health check (${this.#storeNames?.join(', ') ?? 'all stores'})`
  }

  async run(): Promise<HealthCheckResult> {
    const names = this.#storeNames ?? this.#locks.storeNames.map(String)
    const stores = await Promise.all(names.map((name) => this.#probe(name)))
    const failed = stores.filter((store) => store.error)
    const meta = {
      stores: stores.map(({ name, latency, error }) => ({ name, latency, error: error?.message })),
    }

    if (failed.length) {
      const summary = failed.map((store) => `"${store.name}": ${store.error!.message}`).join('; ')
      return Result.failed(`Lock store unreachable: ${summary}`, failed[0].error).mergeMetaData(
        meta
      )
    }
    return Result.ok(`Lock stores are healthy (${names.join(', ')})`).mergeMetaData(meta)
  }

  async #probe(name: string): Promise<{ name: string; latency: number | null; error?: Error }> {
    const startedAt = performance.now()
    try {
      const lock = this.#locks.use(name).createLock(`health-check:${crypto.randomUUID()}`, '10s')
      const roundTrip = (async () => {
        if (!(await lock.acquireImmediately()))
          throw new Error('the probe lock could not be acquired')
        await lock.release()
        return true
      })()
      if (!(await settleWithin(roundTrip, PROBE_TIMEOUT))) {
        roundTrip.catch(() => {})
        throw new Error(`no answer within ${PROBE_TIMEOUT} ms`)
      }
      return { name, latency: Math.round((performance.now() - startedAt) * 100) / 100 }
    } catch (error) {
      return {
        name,
        latency: null,
        error: error instanceof Error ? error : new Error(String(error)),
      }
    }
  }
}
