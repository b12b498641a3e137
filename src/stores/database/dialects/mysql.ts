import { errorField, type Dialect } from './dialect.ts'

/**
 * UTC_TIMESTAMP is fixed for the statement, and counting from the epoch
 * in UTC avoids any time zone (or DST) conversion
 */
const MYSQL_NOW_US = "TIMESTAMPDIFF(MICROSECOND, '1970-01-01', UTC_TIMESTAMP(6))"
const MYSQL_NOW = `(${MYSQL_NOW_US} DIV 1000)`
const MYSQL_HELD = `(\`expiration\` IS NULL OR \`expiration\` > ${MYSQL_NOW})`

/**
 * Fencing values start from the clock in µs, past this since 2001; the ms
 * left to a holder, which a refused acquire reports in the same place,
 * stay far below it (durations are at most 2^31 - 1 ms)
 */
const MYSQL_TOKEN_FLOOR = 1e15

function mysqlInsertId(result: unknown): number {
  return Number((result as [{ insertId: number | string }])[0].insertId)
}

export const mysql: Dialect = {
  name: 'mysql',
  statements(table) {
    const nowUs = MYSQL_NOW_US
    const now = MYSQL_NOW
    const free = `\`expiration\` <= ${now}`
    const held = MYSQL_HELD
    return {
      /**
       * Assignments run left to right, so `expiration` is assigned last. The
       * token, or a refused try's ms left, comes back as `insertId`.
       */
      acquire: `INSERT INTO ${table} (\`key\`, \`owner\`, \`expiration\`, \`fencing\`)
VALUES (:key, :owner, ${now} + :ttl, LAST_INSERT_ID(${nowUs}))
ON DUPLICATE KEY UPDATE
  \`fencing\` = IF(${free}, LAST_INSERT_ID(GREATEST(\`fencing\` + 1, ${nowUs})),
    \`fencing\` + 0 * LAST_INSERT_ID(IFNULL(\`expiration\` - ${now}, 0))),
  \`owner\` = IF(${free}, :owner, \`owner\`),
  \`expiration\` = IF(${free}, ${now} + :ttl, \`expiration\`)`,
      release: `UPDATE ${table} SET \`owner\` = NULL, \`expiration\` = ${now}
WHERE \`key\` = :key AND \`owner\` = :owner AND ${held}`,
      /**
       * The WHERE reads the row before any assignment; the new token comes
       * back as `insertId`, as in acquire
       */
      handOver: `UPDATE ${table} SET
  \`fencing\` = LAST_INSERT_ID(GREATEST(\`fencing\` + 1, ${nowUs})),
  \`owner\` = :next_owner,
  \`expiration\` = ${now} + :ttl
WHERE \`key\` = :key AND \`owner\` = :owner AND ${held}`,
      forceRelease: `UPDATE ${table} SET \`owner\` = NULL, \`expiration\` = ${now}
WHERE \`key\` = :key AND \`owner\` IS NOT NULL`,
      /**
       * Counts matched rows with the drivers' default FOUND_ROWS flag, so
       * an extension to the same expiry still counts
       */
      extend: `UPDATE ${table} SET \`expiration\` = ${now} + :duration
WHERE \`key\` = :key AND \`owner\` = :owner AND ${held}`,
      inspect: `SELECT \`owner\`, \`expiration\` - ${now} AS \`expires_in\`, \`fencing\` FROM ${table}
WHERE \`key\` = :key AND \`owner\` IS NOT NULL AND ${held}`,
      /**
       * A plain read: a DELETE ... LIMIT would lock every row it scans,
       * held ones included (REPEATABLE READ)
       */
      expired: `SELECT \`key\` FROM ${table} WHERE \`expiration\` <= ${now} - :grace LIMIT :limit`,
    }
  },
  /**
   * Through the primary key (forced: on a small table the optimizer would
   * scan it all), so only these rows are locked; a row taken over since it
   * was read no longer matches
   */
  pruneRows(table, rows) {
    return `DELETE ${table} FROM ${table} FORCE INDEX (PRIMARY) WHERE \`key\` IN (${rows.join(', ')})
  AND \`expiration\` <= ${MYSQL_NOW} - :grace`
  },
  semaphore(table, slots) {
    const list = slots.join(', ')
    const mine = `\`key\` IN (${list}) AND \`owner\` = :owner AND ${MYSQL_HELD}`
    return {
      /**
       * Moves the semaphore's sequence on once a slot is taken; its row lock
       * orders concurrent takers
       */
      fence: `INSERT INTO ${table} (\`key\`, \`owner\`, \`expiration\`, \`fencing\`)
VALUES (:counter, NULL, ${MYSQL_NOW}, LAST_INSERT_ID(${MYSQL_NOW_US}))
ON DUPLICATE KEY UPDATE
  \`fencing\` = LAST_INSERT_ID(GREATEST(\`fencing\` + 1, ${MYSQL_NOW_US})),
  \`expiration\` = ${MYSQL_NOW}`,
      holders: `SELECT \`key\`, \`owner\`, \`expiration\` - ${MYSQL_NOW} AS \`expires_in\` FROM ${table}
WHERE \`key\` IN (${list}) AND \`owner\` IS NOT NULL AND ${MYSQL_HELD}`,
      release: `UPDATE ${table} SET \`owner\` = NULL, \`expiration\` = ${MYSQL_NOW}
WHERE ${mine}`,
      forceRelease: `UPDATE ${table} SET \`owner\` = NULL, \`expiration\` = ${MYSQL_NOW}
WHERE \`key\` IN (${list}) AND \`owner\` IS NOT NULL`,
      extend: `UPDATE ${table} SET \`expiration\` = ${MYSQL_NOW} + :duration
WHERE ${mine}`,
    }
  },
  rows: (result) => (result as [Record<string, unknown>[]])[0],
  changes: (result) => (result as [{ affectedRows: number }])[0].affectedRows,
  acquired(result) {
    const insertId = mysqlInsertId(result)
    return insertId >= MYSQL_TOKEN_FLOOR ? insertId : null
  },
  retryAfter(result) {
    const msLeft = mysqlInsertId(result)
    return msLeft === 0 ? null : msLeft
  },
  isMissingTable: (error) =>
    errorField(error, 'code') === 'ER_NO_SUCH_TABLE' || errorField(error, 'errno') === 1146,
  isDeadlock: (error) =>
    errorField(error, 'code') === 'ER_LOCK_DEADLOCK' || errorField(error, 'errno') === 1213,
}
