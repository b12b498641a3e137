import { readFile } from 'node:fs/promises'
import { test } from '@japa/runner'
import { errors } from '../index.ts'
import type { LockStore } from '../src/types.ts'
import { registerStoreSuite } from '../src/testing/store_suite.ts'
import tsdownConfig from '../tsdown.config.ts'

/**
 * A custom store as a user would write one: the required methods only,
 * without retryAfter, wake-up on release, fencing tokens or semaphores
 */
class MapStore implements LockStore {
  #locks = new Map<string, { owner: string; expiresAt: number | null }>()

  #held(key: string) {
    const lock = this.#locks.get(key)
    return lock && (lock.expiresAt === null || lock.expiresAt > Date.now()) ? lock : undefined
  }

  async save(key: string, owner: string, ttl: number | null) {
    if (this.#held(key)) return false
    this.#locks.set(key, { owner, expiresAt: ttl === null ? null : Date.now() + ttl })
    return true
  }

  async delete(key: string, owner: string) {
    if (this.#held(key)?.owner !== owner) throw new errors.E_LOCK_NOT_OWNED()
    this.#locks.delete(key)
  }

  async forceDelete(key: string) {
    this.#locks.delete(key)
  }

  async exists(key: string) {
    return this.#held(key) !== undefined
  }

  async extend(key: string, owner: string, duration: number) {
    const lock = this.#held(key)
    if (lock?.owner !== owner) throw new errors.E_LOCK_NOT_OWNED()
    lock.expiresAt = Date.now() + duration
  }
}

registerStoreSuite('Custom store', {
  createStore: () => new MapStore(),
  processLocal: true,
  processClock: true,
  fencing: false,
  wakesOnRelease: false,
  semaphores: false,
  reportsRetryAfter: false,
})

test.group('adonis-lock/testing', () => {
  /**
   * The specs run from source: check that the export points at what the
   * build emits for the suite, and that the build emits it
   */
  test('is exported from the file the build emits for the suite', async ({ assert }) => {
    const manifest = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8'))
    assert.equal(manifest.exports['./testing'], './build/src/testing/store_suite.js')
    assert.include(tsdownConfig.entry as string[], './src/testing/store_suite.ts')
    assert.include(manifest.files, 'build')
    assert.notInclude(manifest.files, '!build/src')
  })

  test('declares the Japa packages it needs as optional peers', async ({ assert }) => {
    const manifest = JSON.parse(await readFile(new URL('../package.json', import.meta.url), 'utf8'))
    for (const name of ['@japa/runner', '@japa/assert']) {
      assert.property(manifest.peerDependencies, name)
      assert.deepEqual(manifest.peerDependenciesMeta[name], { optional: true })
    }
  })
})
