import type { Cluster, Redis } from 'ioredis'
import { describe } from '../../describe.ts'
import { E_INVALID_LOCK_CONFIG } from '../../errors.ts'

export interface RedisStoreOptions {
  /**
   * An ioredis client or cluster. The store never closes it.
   */
  connection: Redis | Cluster
  /**
   * Connection to SUBSCRIBE on for release messages, which the store then
   * never closes. By default the store duplicates `connection` on the first
   * wait, shares that subscriber with the other stores on `connection`, and
   * closes it with the last of them.
   */
  subscriber?: Redis | Cluster
  /**
   * Pub/sub channel of release messages
   */
  channel?: string
  /**
   * Hand out fencing tokens (default). `false` makes acquire a bare
   * `SET NX PX` instead of a Lua script, and `fencingToken` null.
   * Semaphore slots keep their tokens either way.
   */
  fencing?: boolean
}

export const DEFAULT_RELEASE_CHANNEL = 'adonis-lock:released'

/**
 * Throws E_INVALID_LOCK_CONFIG on options the store cannot run with
 */
export function checkRedisStoreOptions(options: RedisStoreOptions): void {
  if (!options || typeof options !== 'object' || !isRedisClient(options.connection)) {
    throw new E_INVALID_LOCK_CONFIG(
      'The Redis lock store needs { connection }: an ioredis Redis or Cluster client'
    )
  }
  if (options.subscriber !== undefined && !isRedisClient(options.subscriber)) {
    throw new E_INVALID_LOCK_CONFIG(
      'Invalid "subscriber": expected an ioredis Redis or Cluster client'
    )
  }
  if (options.subscriber === options.connection) {
    throw new E_INVALID_LOCK_CONFIG(
      'The "subscriber" must be another connection than "connection": a subscribed connection can run no other command'
    )
  }
  if (options.channel !== undefined && (typeof options.channel !== 'string' || !options.channel)) {
    throw new E_INVALID_LOCK_CONFIG('Invalid "channel": expected a non-empty string')
  }
  if (options.fencing !== undefined && typeof options.fencing !== 'boolean') {
    throw new E_INVALID_LOCK_CONFIG(
      `Invalid "fencing" ${describe(options.fencing)}: expected a boolean`
    )
  }
}

function isRedisClient(value: unknown): value is Redis | Cluster {
  const client = value as Partial<Redis> | null
  return (
    typeof client === 'object' &&
    client !== null &&
    typeof client.evalsha === 'function' &&
    typeof client.duplicate === 'function'
  )
}
