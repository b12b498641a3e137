import { readFileSync } from 'node:fs'
import os from 'node:os'

/**
 * Versions of the backends of the run (SQLite: the library's), null
 * where missing
 */
export interface BackendVersions {
  redis: string | null
  postgres: string | null
  mysql: string | null
  sqlite: string | null
}

export interface Environment extends BackendVersions {
  date: string
  node: string
  cpu: string
  cores: number
  memoryGiB: number
  platform: string
  packages: Record<string, string>
  loadBefore: number[]
  loadAfter?: number[]
  /**
   * The 1-minute load average as each scenario started
   */
  loadAtStart: Array<[scenario: string, load: number]>
}

const PACKAGES = [
  'ioredis',
  'pg',
  'mysql2',
  'better-sqlite3',
  'knex',
  '@verrou/core',
  'redlock',
  'redis-semaphore',
  'async-mutex',
]

function versionOf(name: string): string {
  try {
    const file = new URL(`../../node_modules/${name}/package.json`, import.meta.url)
    return JSON.parse(readFileSync(file, 'utf8')).version
  } catch {
    return 'missing'
  }
}

export function environment(versions: BackendVersions): Environment {
  const cpus = os.cpus()
  return {
    date: new Date().toISOString(),
    node: process.version,
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
    ...versions,
    packages: Object.fromEntries(PACKAGES.map((name) => [name, versionOf(name)])),
    loadBefore: os.loadavg(),
    loadAtStart: [],
  }
}
