import { setTimeout as sleep } from 'node:timers/promises'
import mysql, { type ResultSetHeader } from 'mysql2/promise'
import {
  FAST_RETRY_MS,
  LOCK_TTL_MS,
  newOwner,
  type Contender,
  type LockSession,
} from './contender.ts'
import { databaseTarget, oursContender, RAW_TABLE, verrouContender } from './database.ts'

/**
 * Fixed for the statement; from the epoch in UTC, so no time zone applies
 */
const NOW_MS = "(TIMESTAMPDIFF(MICROSECOND, '1970-01-01', UTC_TIMESTAMP(6)) DIV 1000)"
const EXPIRED = `\`expiration\` <= ${NOW_MS}`

/**
 * One upsert: insert, or take over the row when its holder expired (a
 * released row is kept, expired, for its fencing value), the next token
 * back as `insertId` (LAST_INSERT_ID). The expiry comes from the database
 * clock, like ours. ON DUPLICATE KEY UPDATE assigns left to right and
 * later expressions see the new values, so `expiration`, which every
 * condition reads, is assigned last.
 */
export const RAW_ACQUIRE = `INSERT INTO ${RAW_TABLE} (\`key\`, \`owner\`, \`expiration\`, \`fencing\`)
VALUES (?, ?, ${NOW_MS} + ?, LAST_INSERT_ID(1))
ON DUPLICATE KEY UPDATE
  \`fencing\` = IF(${EXPIRED}, LAST_INSERT_ID(\`fencing\` + 1), \`fencing\`),
  \`owner\` = IF(${EXPIRED}, VALUES(\`owner\`), \`owner\`),
  \`expiration\` = IF(${EXPIRED}, VALUES(\`expiration\`), \`expiration\`)`

/**
 * Frees the row and keeps it, with its fencing value
 */
export const RAW_RELEASE = `UPDATE ${RAW_TABLE} SET \`owner\` = NULL, \`expiration\` = ${NOW_MS}
WHERE \`key\` = ? AND \`owner\` = ?`

export const rawMysql: Contender = {
  id: 'raw-mysql',
  label: 'raw mysql2 upsert + UPDATE',
  backend: 'mysql',
  role: 'baseline',
  modes: ['fast'],
  notes:
    '`mysql2/promise` pool, prepared statements: `INSERT … ON DUPLICATE KEY UPDATE` taking over only an expired row (database clock, fencing + 1 through `LAST_INSERT_ID`); release: owner-checked `UPDATE` freeing the row and keeping its fencing value; polls every 10 ms',
  async open(targets): Promise<LockSession> {
    const { poolSize, ...connection } = databaseTarget(targets, 'mysql')
    const pool = mysql.createPool({
      ...connection,
      connectionLimit: poolSize,
      /**
       * Without FOUND_ROWS (on by default), a refused takeover reports 0
       * affected rows instead of 1, the count of an insert
       */
      flags: ['-FOUND_ROWS'],
    })
    return {
      async acquire(key) {
        const owner = newOwner()
        while (true) {
          const [acquired] = await pool.execute<ResultSetHeader>(RAW_ACQUIRE, [
            key,
            owner,
            LOCK_TTL_MS,
          ])
          if (acquired.affectedRows > 0) break
          await sleep(FAST_RETRY_MS)
        }
        return async () => {
          const [released] = await pool.execute<ResultSetHeader>(RAW_RELEASE, [key, owner])
          if (released.affectedRows !== 1) throw new Error(`${key} was not held`)
        }
      },
      close: () => pool.end(),
    }
  },
}

export const oursMysql: Contender = oursContender(
  'mysql',
  'prepared statements (mysql2 `execute`) on a connection of the knex pool: one `INSERT … ON DUPLICATE KEY UPDATE`, which also reports how long the holder still has when it refuses (through `LAST_INSERT_ID`); default retry: handed the lock by releases of its process, else polls every 250 ms (or when the holder expires)'
)

export const verrouMysql: Contender = verrouContender(
  'mysql',
  'INSERT, on a duplicate key an UPDATE … WHERE expired; release: SELECT then DELETE'
)

export const mysqlContenders = [rawMysql, oursMysql, verrouMysql]
