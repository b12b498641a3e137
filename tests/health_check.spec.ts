import { HealthChecks } from '@adonisjs/core/health'
import { test } from '@japa/runner'
import { defineConfig, LockStoreCheck, stores } from '../index.ts'
import { setupApp } from './helpers/app.ts'

test.group('LockStoreCheck', () => {
  test('reports a live store as healthy, with its latency', async ({ assert }) => {
    const app = await setupApp({
      rcFileContents: { providers: [() => import('../providers/lock_provider.ts')] },
      config: { lock: defineConfig({ default: 'memory', stores: { memory: stores.memory() } }) },
    })
    const locks = await app.container.make('lock.manager')
    const report = await new HealthChecks().register([new LockStoreCheck(locks)]).run()

    assert.isTrue(report.isHealthy)
    const [check] = report.checks
    assert.equal(check.status, 'ok')
    assert.equal(check.meta!.stores[0].name, 'memory')
    assert.isNumber(check.meta!.stores[0].latency)
    assert.isFalse(await locks.use('memory').store.exists('lock:health-check'))
  })

  test('reports an unknown store name as an error', async ({ assert }) => {
    const app = await setupApp({
      rcFileContents: { providers: [() => import('../providers/lock_provider.ts')] },
      config: { lock: defineConfig({ default: 'memory', stores: { memory: stores.memory() } }) },
    })
    const locks = await app.container.make('lock.manager')
    const result = await new LockStoreCheck(locks, 'redis').run()
    assert.equal(result.status, 'error')
    assert.match(result.message, /"redis": Unknown lock store/)
  })
})
