import type { Backend, Contender } from './contender.ts'
import { memoryContenders } from './memory.ts'
import { mysqlContenders } from './mysql.ts'
import { postgresContenders } from './postgres.ts'
import { redisContenders } from './redis.ts'
import { sqliteContenders } from './sqlite.ts'

/**
 * Every contender, the baseline of each backend first
 */
export const CONTENDERS: Contender[] = [
  ...redisContenders,
  ...memoryContenders,
  ...postgresContenders,
  ...mysqlContenders,
  ...sqliteContenders,
]

export const BACKENDS: Backend[] = ['redis', 'memory', 'postgres', 'mysql', 'sqlite']

export const BACKEND_LABELS: Record<Backend, string> = {
  redis: 'Redis',
  memory: 'Memory',
  postgres: 'PostgreSQL',
  mysql: 'MariaDB',
  sqlite: 'SQLite',
}

export function contenderById(id: string): Contender {
  const contender = CONTENDERS.find((candidate) => candidate.id === id)
  if (!contender) throw new Error(`Unknown contender "${id}"`)
  return contender
}

export function baselineOf(backend: Backend): Contender {
  return CONTENDERS.find(
    (contender) => contender.backend === backend && contender.role === 'baseline'
  )!
}

/**
 * The raw baseline `contender` is compared with
 */
export function referenceOf(contender: Contender): Contender {
  return contender.reference ? contenderById(contender.reference) : baselineOf(contender.backend)
}
