/**
 * `npm run demo`: two servers of the demo app share one lock store, and a
 * short scenario shows what the package does. `--once` exits after the
 * scenario (0 only if every step behaved as printed); `--store=redis` or
 * `--store=postgres` shares that store instead of the SQLite file.
 */
import { mkdir, rm } from 'node:fs/promises'
import { join, relative } from 'node:path'
import { parseArgs, styleText } from 'node:util'
import pg from 'pg'
import { post, startJob } from './http.ts'
import { ace, APP_ROOT, freePort, portOpen, startServer, type DemoServer } from './processes.ts'
import { duplicateOrders, idempotentPayment, lockStatus, Report, workerQueue } from './scenario.ts'

const STORES = {
  database: 'SQLite, a file both servers open',
  postgres: 'PostgreSQL on 127.0.0.1:5432, database adonis_lock_demo',
  redis: 'Redis on 127.0.0.1:6379',
} as const
type SharedStore = keyof typeof STORES

const { values } = parseArgs({
  options: {
    once: { type: 'boolean', default: false },
    store: { type: 'string', default: 'database' },
  },
})
const once = values.once
const store = values.store as SharedStore
if (!(store in STORES)) {
  console.error(`Unknown --store=${store}: expected ${Object.keys(STORES).join(', ')}`)
  process.exit(1)
}

const REPO_ROOT = join(APP_ROOT, '../..')
const dbFile = join(REPO_ROOT, 'tmp/demo', once ? `demo-${process.pid}.sqlite` : 'demo.sqlite')
/**
 * In production mode the servers write no route types into the app
 * folder (.adonisjs/), which this repository's lint and typecheck would see
 */
const env = { LOCK_STORE: store, DB_FILE: dbFile, LOG_LEVEL: 'warn', NODE_ENV: 'production' }
const report = new Report()
const servers: DemoServer[] = []

async function prepare() {
  if (store === 'redis' && !(await portOpen(6379))) {
    throw new Error('--store=redis needs Redis on 127.0.0.1:6379')
  }
  if (store === 'postgres') {
    if (!(await portOpen(5432)))
      throw new Error('--store=postgres needs PostgreSQL on 127.0.0.1:5432')
    const client = new pg.Client({
      host: '127.0.0.1',
      port: 5432,
      user: 'postgres',
      database: 'postgres',
    })
    await client.connect()
    try {
      const { rowCount } = await client.query(
        "SELECT 1 FROM pg_database WHERE datname = 'adonis_lock_demo'"
      )
      if (!rowCount) await client.query('CREATE DATABASE adonis_lock_demo')
    } finally {
      await client.end()
    }
  }

  await mkdir(join(REPO_ROOT, 'tmp/demo'), { recursive: true })
  await removeDatabaseFile()
}

/**
 * The tables of the locks (database stores) and of the cache
 */
async function migrate() {
  const connections = store === 'postgres' ? ['sqlite', 'pg'] : ['sqlite']
  for (const connection of connections) {
    const migrated = await ace(['migration:run', '--force', `--connection=${connection}`], env)
    if (migrated.code !== 0) throw new Error(`node ace migration:run failed:\n${migrated.output}`)
  }
}

async function removeDatabaseFile() {
  for (const suffix of ['', '-wal', '-shm', '-journal'])
    await rm(`${dbFile}${suffix}`, { force: true })
}

async function start() {
  const ports = [await freePort(3333), await freePort(3334)]
  const [migrated, ...started] = await Promise.allSettled([
    migrate(),
    startServer('A', ports[0], env),
    startServer('B', ports[1], env),
  ])
  for (const result of started) if (result.status === 'fulfilled') servers.push(result.value)
  const failed = [migrated, ...started].find((result) => result.status === 'rejected')
  if (failed) throw failed.reason

  /**
   * First requests load the routes' controllers and open the store:
   * done before the scenario, so its requests race on equal terms
   */
  for (const server of servers) {
    await post(server, '/orders', { orderId: 'warm-up', ms: 0 })
    await post(server, '/orders/in-memory', { orderId: 'warm-up', ms: 0 })
    await post(server, '/payments', { reference: 'warm-up', ms: 0 })
    await startJob(server, 'warm-up', 'warm-up', 0).done
  }
}

async function stop() {
  await Promise.all(servers.map((server) => server.stop()))
  if (once) await removeDatabaseFile()
}

function printTryIt() {
  const [a, b] = servers
  const json = `-H 'content-type: application/json' -H 'accept: application/json'`
  const storeEnv = store === 'database' ? '' : `LOCK_STORE=${store} `
  console.log(
    `\n${styleText('bold', 'The servers keep running. Try it by hand (Ctrl-C stops both):')}`
  )
  console.log(`   curl -i -X POST ${a.url}/orders ${json} -d '{"orderId":"42"}' &`)
  console.log(`   curl -i -X POST ${b.url}/orders ${json} -d '{"orderId":"42"}'`)
  console.log(`   curl -N -X POST '${a.url}/jobs/nightly?worker=one&ms=5000' &`)
  console.log(`   curl -N -X POST '${b.url}/jobs/nightly?worker=two&ms=5000'`)
  console.log(
    `   curl -i -X POST ${a.url}/payments ${json} -H 'Idempotency-Key: "my-key"' -d '{"reference":"r1","amount":5}'`
  )
  console.log(`   ${storeEnv}npm run demo:ace -- lock:status jobs.nightly`)
}

/**
 * A server that stops answering must not hang CI: the exit handlers of
 * processes.ts kill both servers
 */
if (once) {
  setTimeout(() => {
    console.error('\nThe demo did not finish within 3 minutes')
    process.exit(1)
  }, 180_000).unref()
}

/**
 * Ctrl-C stops both servers, also in the middle of the scenario
 */
let scenarioOver = false
const interrupted = new Promise<void>((resolve) => {
  process.once('SIGINT', resolve)
  process.once('SIGTERM', resolve)
})
let stopping: Promise<void> | undefined
interrupted.then(() => {
  if (scenarioOver) return
  console.log('\nInterrupted: stopping both servers...')
  stopping = stop().then(() => process.exit(130))
})

let exitCode = 0
try {
  console.log(
    styleText('bold', `adonis-lock demo: two AdonisJS servers share the "${store}" lock store`)
  )
  console.log(
    `   ${STORES[store]}${store === 'database' ? ` (${relative(REPO_ROOT, dbFile)})` : ''}`
  )
  await prepare()
  await start()
  for (const server of servers)
    console.log(`   server ${server.name}  ${server.url}  pid ${server.pid}`)

  const ctx = {
    report,
    servers: servers as [DemoServer, DemoServer],
    run: Date.now().toString(36).slice(-4),
    aceEnv: env,
  }
  await duplicateOrders(ctx, store)
  await workerQueue(ctx)
  await idempotentPayment(ctx)
  await lockStatus(ctx)
} catch (error) {
  if (stopping) await stopping
  report.failures.push((error as Error).message)
  console.error(`\n${styleText('red', 'The demo stopped:')} ${(error as Error).message}`)
  for (const server of servers) {
    console.error(`--- server ${server.name} output ---\n${server.output().slice(-4000)}`)
  }
}

if (report.failures.length) {
  console.log(
    `\n${styleText('red', `${report.failures.length} step(s) did not behave as printed`)}`
  )
  exitCode = 1
} else {
  console.log(`\n${styleText('green', 'Every step behaved as printed.')}`)
}

if (stopping) await stopping
scenarioOver = true
if (!once && exitCode === 0) {
  printTryIt()
  await interrupted
  console.log('\nStopping both servers...')
}
await stop()
if (!once && exitCode === 0) console.log('Stopped.')
process.exitCode = exitCode
