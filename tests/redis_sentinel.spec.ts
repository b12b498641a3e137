import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from '@japa/runner'
import { Redis } from 'ioredis'
import { errors, LockFactory } from '../index.ts'
import { RedisStore } from '../src/stores/main.ts'
import { settleWithin, sleep } from '../src/wait.ts'
import {
  RedisServer,
  redisBinariesAvailable,
  redisCommand,
  sparePort,
} from './helpers/redis_servers.ts'

const binaries = redisBinariesAvailable()

/**
 * A sentinel watching `primary` as "locks", started on a spare port
 */
async function startSentinel(primary: RedisServer) {
  const port = await sparePort()
  const config = join(primary.dir, 'sentinel.conf')
  await writeFile(
    config,
    [
      `port ${port}`,
      'bind 127.0.0.1',
      `dir ${primary.dir}`,
      `sentinel monitor locks 127.0.0.1 ${primary.port} 1`,
      'sentinel down-after-milliseconds locks 1000',
      'sentinel failover-timeout locks 5000',
      '',
    ].join('\n')
  )
  const child: ChildProcess = spawn('redis-server', [config, '--sentinel'], { stdio: 'ignore' })
  for (let attempt = 0; attempt < 200; attempt++) {
    if ((await redisCommand(port, 'PING').catch(() => '')) === '+PONG') break
    await sleep(50)
  }
  return {
    port,
    async stop() {
      if (child.exitCode !== null) return
      const exited = once(child, 'exit')
      child.kill('SIGTERM')
      await exited
    },
  }
}

test.group('Redis store | through Sentinel', (group) => {
  group.tap((t) => {
    t.skip(!binaries, 'redis-server is not installed')
    t.timeout(60_000)
  })

  test('a connection from a sentinel over a primary and its replica locks, refuses, wakes waiters and survives a failover', async ({
    assert,
    cleanup,
  }) => {
    const primary = await RedisServer.start()
    cleanup(() => primary.destroy())
    const replica = await RedisServer.start({
      args: ['--replicaof', '127.0.0.1', String(primary.port)],
    })
    cleanup(() => replica.destroy())
    const sentinel = await startSentinel(primary)
    cleanup(() => sentinel.stop())

    const connect = () =>
      new Redis({ sentinels: [{ host: '127.0.0.1', port: sentinel.port }], name: 'locks' })
    const connections = [connect(), connect()]
    const stores = connections.map((connection) => new RedisStore({ connection }))
    cleanup(async () => {
      await Promise.all(stores.map((store) => store.close()))
      for (const connection of connections) connection.disconnect()
    })
    const [here, there] = stores.map((store) => new LockFactory(store))

    const holder = here.createLock('sentinel', '60s')
    assert.isTrue(await holder.acquireImmediately())
    assert.isFalse(await there.createLock('sentinel', '10s').acquireImmediately())
    await assert.rejects(
      () => there.restoreLock({ ...holder.serialize(), owner: 'someone' }).release(),
      errors.E_LOCK_NOT_OWNED as any
    )

    /**
     * Woken by the release, long before its one-minute poll
     */
    const waiter = there.createLock('sentinel', '60s')
    const waiting = waiter.acquire({ retry: { delay: '60s', timeout: '90s' } })
    await sleep(200)
    await holder.release()
    assert.isTrue(await settleWithin(waiting, 10_000), 'the waiter was not woken')
    assert.isAbove(waiter.fencingToken!, holder.fencingToken!)

    /**
     * The replica has the lock once it caught up; after a failover the
     * sentinel hands the clients the new primary
     */
    await connections[0].wait(1, 5000)
    await redisCommand(sentinel.port, 'SENTINEL FAILOVER locks')
    const probe = new Redis({ port: replica.port })
    cleanup(() => void probe.disconnect())
    let promoted = false
    for (let tick = 0; tick < 200 && !promoted; tick++) {
      promoted = ((await probe.role()) as [string])[0] === 'master'
      if (!promoted) await sleep(100)
    }
    assert.isTrue(promoted, 'the sentinel did not promote the replica')
    await waiter.release()
    const after = here.createLock('sentinel', '10s')
    assert.isTrue(await after.acquire({ retry: { timeout: '20s', delay: 200 } }))
    assert.isAbove(after.fencingToken!, waiter.fencingToken!)
  })
})
