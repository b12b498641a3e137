import { createHash } from 'node:crypto'
import type { Knex } from 'knex'
import { parseRequiredDuration } from '../../duration.ts'
import { E_INVALID_LOCK_CONFIG } from '../../errors.ts'
import type { Duration } from '../../types.ts'

/**
 * A Lucid query client (`db.connection(name)`): the store uses its write
 * client
 */
export interface LucidQueryClient {
  getWriteClient(): Knex
}

export interface DatabaseStoreOptions {
  /**
   * A knex instance, or a Lucid query client. The store never closes it.
   */
  connection: Knex | LucidQueryClient
  /**
   * Table created by the migration of `node ace configure adonis-lock`
   */
  tableName?: string
  /**
   * At most this often (60 s by default), a successful acquire also
   * deletes a small batch of expired rows. `false` leaves pruning to
   * `prune()` and `node ace lock:prune`.
   */
  pruneInterval?: Duration | false
  /**
   * Run the statements as prepared statements, parsed and planned once
   * per connection (true by default): named on PostgreSQL, mysql2's
   * `execute` on MySQL, kept better-sqlite3 statements on SQLite (the
   * `mysql` and `sqlite3` drivers never prepare). Set to false behind a
   * pooler that cannot keep them, such as PgBouncer in transaction mode
   * before 1.21 or with `max_prepared_statements = 0`.
   */
  preparedStatements?: boolean
}

export const DEFAULT_TABLE_NAME = 'locks'

const DEFAULT_PRUNE_INTERVAL = 60_000

/**
 * Longest PostgreSQL channel name
 */
const MAX_CHANNEL_BYTES = 63

/**
 * The NOTIFY channel of a table's releases
 */
export function releaseChannel(tableName: string): string {
  const channel = `adonis_lock:${tableName}`
  if (Buffer.byteLength(channel) <= MAX_CHANNEL_BYTES) return channel
  return `adonis_lock:${createHash('sha256').update(tableName).digest('hex').slice(0, 32)}`
}

export function resolveKnex(connection: DatabaseStoreOptions['connection']): Knex {
  const knex =
    connection && typeof (connection as LucidQueryClient).getWriteClient === 'function'
      ? (connection as LucidQueryClient).getWriteClient()
      : (connection as Knex)
  if (typeof knex?.raw !== 'function' || !knex.client) {
    throw new E_INVALID_LOCK_CONFIG(
      'The database store needs a knex instance or a Lucid query client (db.connection()) as "connection"'
    )
  }
  return knex
}

export function pruneIntervalOf(value: DatabaseStoreOptions['pruneInterval']): number | false {
  if (value === false) return false
  if (value === undefined) return DEFAULT_PRUNE_INTERVAL
  try {
    return parseRequiredDuration(value, 'pruneInterval')
  } catch (error) {
    throw new E_INVALID_LOCK_CONFIG(`Invalid database lock store config: ${error.message}`, {
      cause: error,
    })
  }
}
