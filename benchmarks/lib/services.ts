import { mkdir, rm } from 'node:fs/promises'
import { dirname } from 'node:path'
import { fileURLToPath } from 'node:url'
import Database from 'better-sqlite3'
import { Redis } from 'ioredis'
import mysql, { type RowDataPacket } from 'mysql2/promise'
import pg from 'pg'
import { RedisServer } from '../../tests/helpers/redis_servers.ts'
import { canConnect, SERVICES } from '../../tests/helpers/services.ts'
import type { BenchTargets } from '../contenders/contender.ts'
import type { BackendVersions } from './environment.ts'

/**
 * The benchmark's own database on the shared PostgreSQL and MariaDB
 * servers, so its tables never meet those of tests running at the same
 * time; one per run, so that runs at the same time do not drop each
 * other's
 */
export const BENCH_DATABASE = `adonis_lock_bench_${process.pid}`

/**
 * The SQLite database of the run, in the repository's (gitignored) tmp/
 */
const SQLITE_FILE = fileURLToPath(new URL(`../../tmp/bench_${process.pid}.sqlite`, import.meta.url))

const POOL_SIZE = 5

export interface Services {
  targets: BenchTargets
  versions: BackendVersions
  /**
   * Why a backend is missing from the run
   */
  missing: string[]
  /**
   * Server-side Redis command counts since `resetRedisStats()`, keyed by
   * command (calls made inside Lua scripts included)
   */
  redisCommandStats(): Promise<Record<string, number>>
  resetRedisStats(): Promise<void>
  stop(): Promise<void>
}

/**
 * Starts a private redis-server (CONFIG RESETSTAT and INFO commandstats
 * are then ours alone; the shared server on 6379 is never touched), makes
 * the benchmark database on the shared PostgreSQL and MariaDB, and the
 * SQLite file
 */
export async function startServices(): Promise<Services> {
  const missing: string[] = []
  let server: RedisServer | undefined
  let admin: Redis | undefined
  let redisVersion: string | null = null
  try {
    server = await RedisServer.start()
    admin = new Redis({ host: server.host, port: server.port })
    redisVersion = /redis_version:(\S+)/.exec(await admin.info('server'))?.[1] ?? null
  } catch (error) {
    missing.push(`Redis: no private redis-server could be started (${(error as Error).message})`)
  }

  let postgresVersion: string | null = null
  const { host, port, user, database } = SERVICES.postgres
  if (await canConnect(port, host)) {
    const client = new pg.Client({ host, port, user, database })
    await client.connect()
    try {
      const version = await client.query('SHOW server_version')
      postgresVersion = version.rows[0].server_version
      const exists = await client.query('SELECT 1 FROM pg_database WHERE datname = $1', [
        BENCH_DATABASE,
      ])
      if (exists.rowCount === 0) await client.query(`CREATE DATABASE ${BENCH_DATABASE}`)
    } finally {
      await client.end()
    }
  } else {
    missing.push(`PostgreSQL: not reachable on ${host}:${port}`)
  }

  let mysqlVersion: string | null = null
  const mariadb = SERVICES.mariadb
  if (await canConnect(mariadb.port, mariadb.host)) {
    const connection = await mysql.createConnection(mariadb)
    try {
      const [rows] = await connection.query<RowDataPacket[]>('SELECT VERSION() AS version')
      mysqlVersion = rows[0].version
      await connection.query(
        `CREATE DATABASE IF NOT EXISTS ${BENCH_DATABASE} CHARACTER SET utf8mb4`
      )
    } finally {
      await connection.end()
    }
  } else {
    missing.push(`MariaDB: not reachable on ${mariadb.host}:${mariadb.port}`)
  }

  let sqliteVersion: string | null = null
  try {
    await mkdir(dirname(SQLITE_FILE), { recursive: true })
    const db = new Database(SQLITE_FILE)
    try {
      sqliteVersion = db.prepare('SELECT sqlite_version() AS version').get().version
    } finally {
      db.close()
    }
  } catch (error) {
    missing.push(
      `SQLite: no database could be made at ${SQLITE_FILE} (${(error as Error).message})`
    )
  }

  return {
    targets: {
      redis: server ? { host: server.host, port: server.port } : null,
      postgres: postgresVersion
        ? { host, port, user, database: BENCH_DATABASE, poolSize: POOL_SIZE }
        : null,
      mysql: mysqlVersion ? { ...mariadb, database: BENCH_DATABASE, poolSize: POOL_SIZE } : null,
      sqlite: sqliteVersion ? { filename: SQLITE_FILE } : null,
    },
    versions: {
      redis: redisVersion,
      postgres: postgresVersion,
      mysql: mysqlVersion,
      sqlite: sqliteVersion,
    },
    missing,
    async resetRedisStats() {
      await admin?.config('RESETSTAT')
    },
    async redisCommandStats() {
      const stats: Record<string, number> = {}
      if (!admin) return stats
      const info = await admin.info('commandstats')
      for (const match of info.matchAll(/^cmdstat_([^:]+):calls=(\d+)/gm)) {
        stats[match[1]] = Number(match[2])
      }
      return stats
    },
    /**
     * Stops the private server and drops the benchmark databases (every
     * contender has closed its pools by then)
     */
    async stop() {
      admin?.disconnect()
      await server?.destroy()
      if (postgresVersion) {
        const client = new pg.Client({ host, port, user, database })
        await client.connect()
        await dropBenchDatabase(client)
      }
      if (mysqlVersion) await dropBenchDatabase(await mysql.createConnection(mariadb))
      for (const suffix of ['', '-journal', '-wal', '-shm']) {
        await rm(`${SQLITE_FILE}${suffix}`, { force: true })
      }
    },
  }
}

async function dropBenchDatabase(connection: {
  query(sql: string): Promise<unknown>
  end(): Promise<void>
}) {
  try {
    await connection.query(`DROP DATABASE IF EXISTS ${BENCH_DATABASE}`)
  } catch (error) {
    console.warn(`Could not drop ${BENCH_DATABASE}: ${(error as Error).message}`)
  } finally {
    await connection.end()
  }
}

/**
 * Commands the contenders sent: all but the benchmark's own bookkeeping
 */
export function contenderCommands(stats: Record<string, number>): number {
  let total = 0
  for (const [command, calls] of Object.entries(stats)) {
    if (command === 'info' || command.startsWith('config')) continue
    total += calls
  }
  return total
}
