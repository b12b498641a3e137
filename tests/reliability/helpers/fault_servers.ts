/**
 * Private servers the fault tests stop, restart and freeze. Each runs on a
 * spare loopback port; the shared servers are never touched.
 */
import { execFile } from 'node:child_process'
import { promisify } from 'node:util'
import type { TestContext } from '@japa/runner/core'
import type { RedisOptions } from 'ioredis'
import { lucidDatabase, runLocksMigration } from '../../helpers/databases.ts'
import { PostgresServer, untilStopped } from '../../helpers/private_postgres.ts'
import { RedisServer } from '../../helpers/redis_servers.ts'
import { LockFactory } from '../../../src/lock_factory.ts'
import { openBackend, type BackendSpec } from './backends.ts'
import { count } from './figures.ts'

const run = promisify(execFile)

export interface FaultServer {
  label: string
  /**
   * The store on this server, through a client with these options
   */
  backend(clientOptions?: Record<string, unknown>): BackendSpec
  /**
   * Takes the server down (its clients see connections close)
   */
  stop(): Promise<void>
  start(): Promise<void>
  /**
   * SIGSTOP: connections stay open, nothing answers
   */
  pause(): void
  /**
   * SIGCONT
   */
  resume(): void
  destroy(): Promise<void>
}

/**
 * A private redis-server. With `persistent`, every write is in its
 * append-only file before it is answered, so locks survive a restart.
 */
/**
 * A server a reliability test breaks, and the client options it runs with
 */
export interface FaultVariant {
  title: string
  available: () => boolean
  start: () => Promise<FaultServer>
  clientOptions: Record<string, unknown>
}

/**
 * Starts the variant's server and opens a lock factory on it; both are
 * closed when the test ends
 */
export async function startFaultyLocks(
  variant: FaultVariant,
  cleanup: TestContext['cleanup'],
  prefix: string
): Promise<{ server: FaultServer; locks: LockFactory }> {
  const server = await variant.start()
  cleanup(() => server.destroy())
  const backend = openBackend(server.backend(variant.clientOptions))
  cleanup(() => backend.close())
  return { server, locks: new LockFactory(backend.store, { prefix }) }
}

export async function startRedisServer(options: { persistent: boolean }): Promise<FaultServer> {
  const server = await RedisServer.start({
    args: options.persistent ? ['--appendonly', 'yes', '--appendfsync', 'always'] : [],
  })
  count('privateServers')
  let pid = await redisPid(server.port)
  let paused = false
  const resume = () => {
    if (paused) process.kill(pid, 'SIGCONT')
    paused = false
  }
  return {
    label: options.persistent ? 'Redis (appendfsync always)' : 'Redis',
    backend: (clientOptions = {}) => ({
      kind: 'redis',
      port: server.port,
      options: clientOptions as RedisOptions,
    }),
    async stop() {
      resume()
      await server.stop()
    },
    async start() {
      await server.start()
      pid = await redisPid(server.port)
      count('restarts')
    },
    pause() {
      process.kill(pid, 'SIGSTOP')
      paused = true
      untilStopped(pid)
      count('stalls')
    },
    resume,
    async destroy() {
      resume()
      await server.destroy()
    },
  }
}

async function redisPid(port: number): Promise<number> {
  const { stdout } = await run('redis-cli', ['-p', String(port), 'info', 'server'])
  const pid = Number(/process_id:(\d+)/.exec(stdout)?.[1])
  if (!pid) throw new Error(`no process_id in INFO of the redis-server on ${port}`)
  return pid
}

/**
 * A private PostgreSQL cluster with a locks table made by the real
 * migration
 */
export async function startPostgresServer(): Promise<FaultServer> {
  const server = await PostgresServer.start()
  count('privateServers')
  const tableName = 'locks'
  const db = lucidDatabase(server.connectionConfig() as any)
  try {
    await runLocksMigration(db.connection(), tableName)
  } catch (error) {
    await server.destroy()
    throw error
  } finally {
    await db.manager.closeAll()
  }
  return {
    label: 'PostgreSQL',
    backend: (clientOptions = {}) => ({
      kind: 'database',
      config: server.connectionConfig(clientOptions),
      tableName,
    }),
    stop: () => server.stop(),
    async start() {
      await server.start()
      count('restarts')
    },
    pause() {
      server.pause()
      count('stalls')
    },
    resume: () => server.resume(),
    destroy: () => server.destroy(),
  }
}
