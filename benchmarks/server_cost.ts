/**
 * What the servers themselves spend per lock operation, next to the raw
 * baselines of the benchmark. Wall-clock ratios move with the machine's
 * noise by more than the few µs in question; these counts do not, so
 * they show whether an unmet uncontended goal is within reach.
 *
 *   npm run bench:cost
 *
 * - Redis (a private redis-server): µs per call from `INFO commandstats`
 *   (an EVALSHA's count includes the commands its script runs) for the
 *   raw `SET NX PX`, a script that returns at once, a script running only
 *   that `SET`, the raw tokened acquire script, our acquire (the store's
 *   `save`, with the fencing token), and both releases; then the ceiling
 *   that the cheapest script puts on the sequential ratio, from the raw
 *   pair's round trip measured here.
 * - MariaDB (the benchmark's own database): CPU time of the server
 *   process per acquire + release pair, 64 loops on distinct keys, for
 *   the raw upsert + `UPDATE` (the released row kept for its fencing
 *   value) and our store's, interleaved, both as prepared statements on
 *   connections of one knex pool.
 *
 * Ours runs through the public store API only (`RedisStore`,
 * `DatabaseStore`).
 */
import { readFile } from 'node:fs/promises'
import type { Knex } from 'knex'
import { Redis } from 'ioredis'
import { type BenchTargets, newOwner } from './contenders/contender.ts'
import { connectKnex, createTables, OURS_TABLE } from './contenders/database.ts'
import { RAW_ACQUIRE, RAW_RELEASE } from './contenders/mysql.ts'
import { RELEASE_LUA, TOKENED_ACQUIRE_LUA } from './contenders/redis.ts'
import { median } from './lib/stats.ts'
import { startServices } from './lib/services.ts'
import { DatabaseStore, RedisStore } from '../src/stores/main.ts'
import type { AcquireResult } from '../src/types.ts'

const TTL_MS = 10_000
const REDIS_CALLS = 20_000
const MYSQL_ROUNDS = 5
const MYSQL_ROUND_MS = 2000
const MYSQL_LOOPS = 64

/**
 * The acquire scripts, each called as ours is: 2 keys, 3 arguments
 */
const ACQUIRE_VARIANTS: Array<[label: string, lua: string]> = [
  ['a script that returns at once', 'return {1, 1}'],
  [
    'a script running only the `SET NX PX`',
    `if not redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2], 'NX') then return {0} end
return {1, 1}`,
  ],
  ['raw tokened acquire script (SET NX PX, INCR, PEXPIRE)', TOKENED_ACQUIRE_LUA],
]

function acquired(result: boolean | AcquireResult): boolean {
  return typeof result === 'boolean' ? result : result.acquired
}

async function usecPerCall(admin: Redis, command: string): Promise<number> {
  const info = await admin.info('commandstats')
  const match = new RegExp(`^cmdstat_${command}:calls=\\d+,usec=\\d+,usec_per_call=([\\d.]+)`, 'm')
  return Number(match.exec(info)?.[1] ?? Number.NaN)
}

async function redisCosts(port: number) {
  const client = new Redis({ port })
  const admin = new Redis({ port })
  const store = new RedisStore({ connection: client })
  try {
    /**
     * `{cost}` is the Redis key of the store's lock `cost`
     */
    const name = 'cost'
    const key = '{cost}'
    const owner = newOwner()
    const rows: Array<[string, number]> = []

    await admin.config('RESETSTAT')
    for (let i = 0; i < REDIS_CALLS; i++) {
      await client.set(key, owner, 'PX', TTL_MS, 'NX')
      await client.del(key)
    }
    const bareSet = await usecPerCall(admin, 'set')
    rows.push(['`SET key owner PX ttl NX` (raw baseline; ours with `fencing: false`)', bareSet])

    const scriptCosts: number[] = []
    for (const [label, lua] of ACQUIRE_VARIANTS) {
      const sha = (await client.script('LOAD', lua)) as string
      await admin.config('RESETSTAT')
      for (let i = 0; i < REDIS_CALLS; i++) {
        await client.evalsha(sha, 2, key, `${key}:fencing`, owner, TTL_MS, 60_000)
        await client.del(key)
      }
      const cost = await usecPerCall(admin, 'evalsha')
      scriptCosts.push(cost)
      rows.push([label, cost])
    }

    await admin.config('RESETSTAT')
    for (let i = 0; i < REDIS_CALLS; i++) {
      if (!acquired(await store.save(name, owner, TTL_MS))) throw new Error(`${key} was held`)
      await client.del(key)
    }
    rows.push([
      'adonis-lock acquire (`RedisStore#save`: SET NX PX, TIME, GET, SET PX)',
      await usecPerCall(admin, 'evalsha'),
    ])

    /**
     * Releases, each after a bare SET; the raw pair's round trip is timed
     * on the client meanwhile
     */
    const rawRelease = (await client.script('LOAD', RELEASE_LUA)) as string
    await admin.config('RESETSTAT')
    const started = performance.now()
    for (let i = 0; i < REDIS_CALLS; i++) {
      await client.set(key, owner, 'PX', TTL_MS, 'NX')
      await client.evalsha(rawRelease, 1, key, owner)
    }
    const rawPairUs = ((performance.now() - started) * 1000) / REDIS_CALLS
    rows.push(['raw release script (GET, DEL)', await usecPerCall(admin, 'evalsha')])

    await admin.config('RESETSTAT')
    for (let i = 0; i < REDIS_CALLS; i++) {
      await client.set(key, owner, 'PX', TTL_MS, 'NX')
      await store.delete(name, owner)
    }
    rows.push([
      'adonis-lock release (`RedisStore#delete`: GET, DEL; PUBLISH when the value says a try was refused)',
      await usecPerCall(admin, 'evalsha'),
    ])

    const cheapestScript = scriptCosts[1] - bareSet
    return { rows, rawPairUs, ceiling: rawPairUs / (rawPairUs + cheapestScript) }
  } finally {
    await store.close?.()
    client.disconnect()
    admin.disconnect()
  }
}

/**
 * CPU time (user + system) of the MariaDB server process, in µs; null
 * when its /proc entry cannot be read (another machine, another user)
 */
async function serverCpuReader(db: Knex): Promise<(() => Promise<number>) | null> {
  try {
    const [[{ file }]] = await db.raw('SELECT @@pid_file AS file')
    const pidFile = await readFile(file, 'utf8')
    const pid = pidFile.trim()
    /**
     * utime and stime, fields 14 and 15 of /proc/<pid>/stat, in clock
     * ticks of 1/100 s (USER_HZ on Linux)
     */
    const read = async () => {
      const stat = await readFile(`/proc/${pid}/stat`, 'utf8')
      const fields = stat.split(') ')[1].split(' ')
      return (Number(fields[11]) + Number(fields[12])) * 10_000
    }
    await read()
    return read
  } catch {
    return null
  }
}

type Pair = (key: string) => Promise<void>

/**
 * On the benchmark's own tables (as `npm run bench` makes them): the raw
 * baseline's statements prepared (mysql2's `execute`) on connections of
 * the knex pool that our store uses
 */
async function mysqlCosts(targets: BenchTargets) {
  await createTables(targets)
  const db = connectKnex('mysql', targets)
  const store = new DatabaseStore({ connection: db, tableName: OURS_TABLE })
  try {
    const executeRaw = async (sql: string, values: unknown[]) => {
      const connection = await db.client.acquireConnection()
      try {
        return await new Promise<number>((resolve, reject) =>
          connection.execute(sql, values, (error: Error | null, result: any) =>
            error ? reject(error) : resolve(result.affectedRows)
          )
        )
      } finally {
        await db.client.releaseConnection(connection)
      }
    }
    const rawPair: Pair = async (key) => {
      const owner = newOwner()
      if ((await executeRaw(RAW_ACQUIRE, [key, owner, TTL_MS])) === 0) {
        throw new Error(`${key} was held`)
      }
      if ((await executeRaw(RAW_RELEASE, [key, owner])) !== 1) {
        throw new Error(`${key} was not released`)
      }
    }
    const ourPair: Pair = async (key) => {
      const owner = newOwner()
      if (!acquired(await store.save(key, owner, TTL_MS))) throw new Error(`${key} was held`)
      await store.delete(key, owner)
    }
    const variants: Array<[string, Pair]> = [
      ['raw upsert + `UPDATE` (row kept)', rawPair],
      ['adonis-lock: acquire + release (row kept)', ourPair],
    ]

    const serverCpu = await serverCpuReader(db)
    const samples = variants.map(() => ({ rate: [] as number[], cpu: [] as number[] }))
    for (let round = 0; round < MYSQL_ROUNDS; round++) {
      for (const [index, [, run]] of variants.entries()) {
        let pairs = 0
        const cpuBefore = await serverCpu?.()
        const started = performance.now()
        const until = started + MYSQL_ROUND_MS
        await Promise.all(
          Array.from({ length: MYSQL_LOOPS }, async (_, loop) => {
            while (performance.now() < until) {
              await run(`cost-${index}-${loop}`)
              pairs++
            }
          })
        )
        const elapsed = performance.now() - started
        samples[index].rate.push((pairs * 1000) / elapsed)
        if (serverCpu) samples[index].cpu.push(((await serverCpu()) - cpuBefore!) / pairs)
      }
    }
    return {
      measuredCpu: serverCpu !== null,
      rows: variants.map(([label], index) => ({
        label,
        rate: median(samples[index].rate),
        cpu: serverCpu ? median(samples[index].cpu) : Number.NaN,
      })),
    }
  } finally {
    await store.close?.()
    await db.destroy()
  }
}

const services = await startServices()
try {
  const { redis, mysql } = services.targets
  if (redis) {
    const { rows, rawPairUs, ceiling } = await redisCosts(redis.port)
    console.log(`## Redis: server µs per call (${REDIS_CALLS} calls each)\n`)
    console.log('| call | µs per call |\n| --- | ---: |')
    for (const [label, cost] of rows) console.log(`| ${label} | ${cost.toFixed(2)} |`)
    console.log(
      `\nRaw pair (SET + release script), round trip here: ${rawPairUs.toFixed(1)} µs. ` +
        `A fencing token needs a script in the acquire; even the cheapest one above limits ` +
        `the sequential ratio to ${ceiling.toFixed(3)}x of raw.\n`
    )
  }
  if (mysql) {
    const { rows, measuredCpu } = await mysqlCosts(services.targets)
    console.log(
      `## MariaDB: ${MYSQL_LOOPS} loops on distinct keys, medians of ${MYSQL_ROUNDS} interleaved rounds\n`
    )
    console.log('| pair | pairs/s | server CPU µs per pair |\n| --- | ---: | ---: |')
    for (const row of rows) {
      const cpu = measuredCpu ? row.cpu.toFixed(0) : 'n/a'
      console.log(`| ${row.label} | ${row.rate.toFixed(0)} | ${cpu} |`)
    }
    if (!measuredCpu) console.log('\n(the server process is not readable here: no CPU column)')
  }
  for (const reason of services.missing) console.log(`skipped: ${reason}`)
} finally {
  await services.stop()
}
