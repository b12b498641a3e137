import type { Backend, Contender } from './contender.ts'
import { memoryContenders } from './memory.ts'
import { postgresContenders } from './postgres.ts'
import { redisContenders } from './redis.ts'

/**
 * Every contender, the baseline of each backend first
 */
export const CONTENDERS: Contender[] = [
  ...redisContenders,
  ...memoryContenders,
  ...postgresContenders,
]

export const BACKENDS: Backend[] = ['redis', 'memory', 'postgres']

export const BACKEND_LABELS: Record<Backend, string> = {
  redis: 'Redis',
  memory: 'Memory',
  postgres: 'PostgreSQL',
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
