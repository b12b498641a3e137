/**
 * What every contender of the benchmark is: a lock library (or a raw
 * baseline) on one backend, opened as a session that acquires and
 * releases keys the way an application would use it.
 */

import { LockFactory as VerrouLockFactory } from '@verrou/core'
import { LockFactory } from '../../index.ts'
import type { LockFactoryOptions, LockStore } from '../../src/types.ts'

export type Backend = 'redis' | 'memory' | 'postgres' | 'mysql' | 'sqlite'

/**
 * `default`: the library's own retry settings. `fast`: its retry delay set
 * to 10 ms, the polling interval of the raw baselines.
 */
export type RetryMode = 'default' | 'fast'

export const FAST_RETRY_MS = 10

/**
 * Lock expiry used by every contender: far longer than any critical
 * section of the benchmark, so no lock ever expires while held
 */
export const LOCK_TTL_MS = 10_000

/**
 * Where the backends of this run are
 */
export interface BenchTargets {
  redis: { host: string; port: number } | null
  postgres: ServerTarget | null
  mysql: (ServerTarget & { password: string }) | null
  /**
   * One database file; its contenders open one connection each
   */
  sqlite: { filename: string } | null
}

export interface ServerTarget {
  host: string
  port: number
  user: string
  database: string
  /**
   * Connections of each pool a contender opens
   */
  poolSize: number
}

export type Release = () => Promise<void>

export interface LockSession {
  /**
   * Waits until this session holds `key`, retrying as the library does
   * in the session's mode, and resolves to the function releasing it.
   * Rejects when the library gives up (its attempts or timeout ran out).
   */
  acquire(key: string): Promise<Release>
  /**
   * Closes the connections the session opened
   */
  close(): Promise<void>
}

export interface Contender {
  id: string
  label: string
  backend: Backend
  role: 'ours' | 'baseline' | 'peer'
  /**
   * Id of the raw baseline this contender is compared with, when not the
   * first baseline of its backend
   */
  reference?: string
  /**
   * On a twin running the package's code of another commit (`--compare`):
   * the id of the current contender it is the twin of, and the commit
   */
  compared?: { of: string; sha: string }
  /**
   * Modes of the contended scenario. The raw baselines only poll every
   * 10 ms; a library whose default already is 10 ms still runs both, as a
   * noise check.
   */
  modes: RetryMode[]
  /**
   * What the contender is, for the results file
   */
  notes: string
  open(targets: BenchTargets, mode: RetryMode): Promise<LockSession>
}

/**
 * An owner id as strong as the libraries' own: every real lock needs one
 */
export function newOwner(): string {
  return crypto.randomUUID()
}

/**
 * A session of adonis-lock on `store`: the benchmark's ttl, the mode's
 * retry delay, and `closeBackend` for what the caller opened for the store
 */
export function oursSession(
  store: LockStore,
  mode: RetryMode,
  closeBackend: () => Promise<void>,
  options: LockFactoryOptions = {}
): LockSession {
  const factory = new LockFactory(store, {
    ttl: LOCK_TTL_MS,
    retry: mode === 'fast' ? { delay: FAST_RETRY_MS } : undefined,
    ...options,
  })
  return {
    async acquire(key) {
      const lock = factory.createLock(key)
      await lock.acquire()
      return () => lock.release()
    },
    async close() {
      await store.close?.()
      await closeBackend()
    },
  }
}

/**
 * A session of @verrou/core on the store `factory` makes (its drivers'
 * `.factory()`), with its retry delay set to 10 ms in the fast mode
 */
export function verrouSession(
  factory: ConstructorParameters<typeof VerrouLockFactory>[0],
  mode: RetryMode,
  closeBackend: () => Promise<void>
): LockSession {
  const locks = new VerrouLockFactory(factory, {
    retry: mode === 'fast' ? { delay: FAST_RETRY_MS } : undefined,
  })
  return {
    async acquire(key) {
      const lock = locks.createLock(key, LOCK_TTL_MS)
      if (!(await lock.acquire())) throw new Error('verrou gave up')
      return () => lock.release()
    },
    close: closeBackend,
  }
}
