import { setTimeout as sleep } from 'node:timers/promises'
import { Mutex } from 'async-mutex'
import { memoryStore } from '@verrou/core/drivers/memory'
import { Emitter } from '@adonisjs/core/events'
import { AppFactory } from '@adonisjs/core/factories/app'
import { MemoryStore } from '../../src/stores/main.ts'
import {
  FAST_RETRY_MS,
  LOCK_TTL_MS,
  newOwner,
  type Contender,
  oursSession,
  type LockSession,
  type RetryMode,
  verrouSession,
} from './contender.ts'

/**
 * The raw baseline: a `Map` check-and-set with expiry and an owner check,
 * written as async acquire/release functions like a real store, polling
 * every 10 ms when the key is taken
 */
class MapLocks {
  #held = new Map<string, { owner: string; expiresAt: number }>()

  async acquire(key: string, owner: string, ttl: number): Promise<boolean> {
    const now = Date.now()
    const holder = this.#held.get(key)
    if (holder && holder.expiresAt > now) return false
    this.#held.set(key, { owner, expiresAt: now + ttl })
    return true
  }

  async release(key: string, owner: string): Promise<void> {
    if (this.#held.get(key)?.owner !== owner) throw new Error(`${key} is not held by ${owner}`)
    this.#held.delete(key)
  }
}

export const rawMap: Contender = {
  id: 'raw-map',
  label: 'raw Map check-and-set',
  backend: 'memory',
  role: 'baseline',
  modes: ['fast'],
  notes: 'a `Map` check-and-set with expiry and owner check, as async functions; polls every 10 ms',
  async open(): Promise<LockSession> {
    const locks = new MapLocks()
    return {
      async acquire(key) {
        const owner = newOwner()
        while (!(await locks.acquire(key, owner, LOCK_TTL_MS))) await sleep(FAST_RETRY_MS)
        return () => locks.release(key, owner)
      },
      async close() {},
    }
  },
}

export const oursMemory: Contender = {
  id: 'ours-memory',
  label: 'adonis-lock (memory)',
  backend: 'memory',
  role: 'ours',
  modes: ['default', 'fast'],
  notes: '`new LockFactory(new MemoryStore())`; `createLock(key).acquire()` / `release()`',
  open: async (_targets, mode: RetryMode) => oursSession(new MemoryStore(), mode, async () => {}),
}

export const verrouMemory: Contender = {
  id: 'verrou-memory',
  label: '@verrou/core (memory)',
  backend: 'memory',
  role: 'peer',
  modes: ['default', 'fast'],
  notes: '`memoryStore()`; default retry: every 250 ms, no limit',
  open: async (_targets, mode: RetryMode) =>
    verrouSession(memoryStore().factory(), mode, async () => {}),
}

export const asyncMutex: Contender = {
  id: 'async-mutex',
  label: 'async-mutex',
  backend: 'memory',
  role: 'peer',
  modes: ['default'],
  notes: 'one `Mutex` per key (no expiry, no owner); waiters queue, no polling',
  async open(): Promise<LockSession> {
    const mutexes = new Map<string, Mutex>()
    return {
      async acquire(key) {
        let mutex = mutexes.get(key)
        if (!mutex) {
          mutex = new Mutex()
          mutexes.set(key, mutex)
        }
        const release = await mutex.acquire()
        return async () => release()
      },
      async close() {},
    }
  },
}

/**
 * Ours with the app's real emitter and nobody listening: the cost of the
 * events when unused, next to `ours-memory` in the same run
 */
export const oursMemoryEvents: Contender = {
  id: 'ours-memory-events',
  label: 'adonis-lock (memory, emitter without listeners)',
  backend: 'memory',
  role: 'ours',
  modes: ['fast'],
  notes: 'as `ours-memory`, with the AdonisJS emitter attached and no listener',
  open: async (_targets, mode: RetryMode) =>
    oursSession(new MemoryStore(), mode, async () => {}, {
      emitter: new Emitter(new AppFactory().create(new URL('../../tmp/', import.meta.url))),
    }),
}

/**
 * Ours with `telemetry: false`: the cost of the OpenTelemetry hooks when no
 * SDK is registered, next to `ours-memory` in the same run
 */
export const oursMemoryNoTelemetry: Contender = {
  id: 'ours-memory-no-telemetry',
  label: 'adonis-lock (memory, telemetry: false)',
  backend: 'memory',
  role: 'ours',
  modes: ['fast'],
  notes: 'as `ours-memory`, with `telemetry: false`',
  open: async (_targets, mode: RetryMode) =>
    oursSession(new MemoryStore(), mode, async () => {}, { telemetry: false }),
}

export const memoryContenders = [
  rawMap,
  oursMemory,
  oursMemoryEvents,
  oursMemoryNoTelemetry,
  verrouMemory,
  asyncMutex,
]
