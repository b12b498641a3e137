/**
 * A private PostgreSQL cluster for the tests that stop, restart or stall
 * the server: initdb'ed from the Debian binaries into a temporary
 * directory, run as the `postgres` user (PostgreSQL refuses to run as
 * root) on a spare loopback port, and killed by the test that started it.
 * The shared server on 5432 is never touched.
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { existsSync, readdirSync, readFileSync } from 'node:fs'
import { chown, mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { sleep } from '../../src/wait.ts'
import { canConnect } from './services.ts'
import { sparePort } from './redis_servers.ts'

const run = promisify(execFile)

const POSTGRES_ROOT = '/usr/lib/postgresql'

/**
 * The bin directory of the newest installed PostgreSQL, or null
 */
export function postgresBinDir(): string | null {
  if (!existsSync(POSTGRES_ROOT)) return null
  const versions = readdirSync(POSTGRES_ROOT)
    .filter((version) => existsSync(join(POSTGRES_ROOT, version, 'bin', 'initdb')))
    .sort((a, b) => Number(b) - Number(a))
  return versions.length ? join(POSTGRES_ROOT, versions[0], 'bin') : null
}

/**
 * uid/gid the server runs as: `postgres` when we are root, ourselves
 * otherwise
 */
function serverUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined
  const found = spawnSync('id', ['-u', 'postgres'], { encoding: 'utf8' })
  const uid = Number(found.stdout.trim())
  const gid = Number(spawnSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).stdout.trim())
  if (found.status !== 0 || !Number.isInteger(uid) || !Number.isInteger(gid)) return undefined
  return { uid, gid }
}

/**
 * Whether a private cluster can be started here (the Debian binaries, and
 * a `postgres` user when we are root). In CI a missing piece fails the
 * run; elsewhere its tests are skipped with a loud message.
 */
export function privatePostgresAvailable(): boolean {
  const missing = !postgresBinDir()
    ? `PostgreSQL binaries are not installed under ${POSTGRES_ROOT} (Debian package postgresql)`
    : process.getuid?.() === 0 && !serverUser()
      ? 'there is no "postgres" user to run a private PostgreSQL cluster as'
      : null
  if (!missing) return true
  if (process.env.CI) throw new Error(`${missing}; CI needs it`)
  console.warn(`\n!!! ${missing}: the private PostgreSQL server tests are SKIPPED.\n`)
  return false
}

/**
 * Clusters still running when the test process exits are shut down, so an
 * aborted run leaves none behind
 */
const running = new Set<PostgresServer>()
process.once('exit', () => {
  for (const server of running) server.killNow()
})

export class PostgresServer {
  readonly host = '127.0.0.1'
  readonly user = 'postgres'
  readonly database = 'postgres'
  #child: ChildProcess | undefined
  #output = ''
  #paused: number[] = []

  private constructor(
    readonly port: number,
    readonly dir: string,
    readonly binDir: string,
    readonly account: { uid: number; gid: number } | undefined
  ) {}

  /**
   * Initialises a cluster in a fresh temporary directory and starts it on
   * a spare port
   */
  static async start(): Promise<PostgresServer> {
    const binDir = postgresBinDir()
    if (!binDir) throw new Error('PostgreSQL binaries are not installed')
    const account = serverUser()
    const dir = await mkdtemp(join(tmpdir(), 'adonis-lock-pg-'))
    if (account) await chown(dir, account.uid, account.gid)
    const server = new PostgresServer(await sparePort(), dir, binDir, account)
    try {
      await run(
        join(binDir, 'initdb'),
        ['-D', join(dir, 'data'), '-A', 'trust', '-U', 'postgres', '--no-sync', '-E', 'UTF8'],
        { ...account, cwd: dir, timeout: 120_000, env: { ...process.env, LC_ALL: 'C' } }
      )
      await server.start()
    } catch (error) {
      await server.destroy()
      throw error
    }
    return server
  }

  get dataDir(): string {
    return join(this.dir, 'data')
  }

  get running(): boolean {
    return this.#child !== undefined
  }

  /**
   * knex/Lucid connection config of this server
   */
  connectionConfig(extra: Record<string, unknown> = {}) {
    return {
      client: 'pg',
      connection: {
        host: this.host,
        port: this.port,
        user: this.user,
        database: this.database,
        ...extra,
      },
    }
  }

  async start(): Promise<void> {
    if (this.#child) return
    this.#output = ''
    /**
     * fsync=off only matters when the machine crashes: a killed server
     * still keeps every commit, which the restart tests rely on
     */
    const child = spawn(
      join(this.binDir, 'postgres'),
      [
        '-D',
        this.dataDir,
        '-p',
        String(this.port),
        '-k',
        this.dir,
        '-c',
        'listen_addresses=127.0.0.1',
        '-c',
        'fsync=off',
        '-c',
        'full_page_writes=off',
        '-c',
        'shared_buffers=16MB',
        '-c',
        'max_connections=40',
        '-c',
        'logging_collector=off',
      ],
      { ...this.account, cwd: this.dir, stdio: ['ignore', 'pipe', 'pipe'] }
    )
    /**
     * Read the output so the server never blocks on a full pipe; the end of
     * it explains a server that did not come up
     */
    const keep = (chunk: Buffer) => (this.#output = (this.#output + chunk.toString()).slice(-4000))
    child.stdout!.on('data', keep)
    child.stderr!.on('data', keep)
    child.once('exit', () => {
      if (this.#child === child) {
        this.#child = undefined
        running.delete(this)
      }
    })
    this.#child = child
    running.add(this)

    for (let attempt = 0; attempt < 600; attempt++) {
      if (!this.#child) break
      if (await this.#acceptsQueries()) return
      await sleep(50)
    }
    await this.stop()
    throw new Error(`postgres did not start on ${this.port}:\n${this.#output}`)
  }

  /**
   * `pg_isready` says yes only once recovery is over and logins work
   */
  async #acceptsQueries(): Promise<boolean> {
    if (!(await canConnect(this.port, this.host, 500))) return false
    try {
      await run(
        join(this.binDir, 'pg_isready'),
        ['-h', this.host, '-p', String(this.port), '-U', this.user, '-d', this.database, '-t', '2'],
        { timeout: 5000 }
      )
      return true
    } catch {
      return false
    }
  }

  /**
   * Immediate shutdown (SIGQUIT): every backend dies at once, like a crash;
   * the next start recovers from the WAL. Waits until the server is gone.
   */
  async stop(): Promise<void> {
    const child = this.#child
    if (!child) return
    this.resume()
    const exited = new Promise((resolve) => child.once('exit', resolve))
    child.kill('SIGQUIT')
    const timer = setTimeout(() => child.kill('SIGKILL'), 10_000)
    /**
     * The postmaster exits once its backends are gone
     */
    await exited
    clearTimeout(timer)
  }

  async restart(): Promise<void> {
    await this.stop()
    await this.start()
  }

  /**
   * Freezes the server (SIGSTOP of the postmaster, then of every backend):
   * connections stay open and queries get no answer, like a network stall.
   * Returns once every process is seen stopped: on a loaded machine a
   * signal lands late, and a backend the postmaster was forking when it
   * got its SIGSTOP appears only then.
   */
  pause(): void {
    const pid = this.#child?.pid
    if (!pid || this.#paused.length) return
    process.kill(pid, 'SIGSTOP')
    this.#paused = [pid]
    untilStopped(pid)
    for (let found = true; found;) {
      found = false
      for (const backend of this.#backends(pid)) {
        if (this.#paused.includes(backend)) continue
        try {
          process.kill(backend, 'SIGSTOP')
          this.#paused.push(backend)
          found = true
        } catch {}
      }
    }
    for (const backend of this.#paused) untilStopped(backend)
  }

  /**
   * SIGCONT to what `pause()` stopped, backends first
   */
  resume(): void {
    for (const pid of this.#paused.toReversed()) {
      try {
        process.kill(pid, 'SIGCONT')
      } catch {}
    }
    this.#paused = []
  }

  /**
   * Stops the server and removes its directory
   */
  async destroy(): Promise<void> {
    await this.stop()
    await rm(this.dir, { recursive: true, force: true })
  }

  /**
   * Synchronous last resort, for the exit handler
   */
  killNow(): void {
    const pid = this.#child?.pid
    if (!pid) return
    for (const backend of [pid, ...this.#backends(pid)]) {
      try {
        process.kill(backend, 'SIGCONT')
        process.kill(backend, 'SIGKILL')
      } catch {}
    }
  }

  /**
   * Child processes of the postmaster, from /proc
   */
  #backends(postmaster: number): number[] {
    const children: number[] = []
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue
      try {
        const stat = readFileSync(`/proc/${entry}/stat`, 'utf8')
        /**
         * The command name may hold spaces: the ppid is the second field
         * after the closing parenthesis
         */
        const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1])
        if (ppid === postmaster) children.push(Number(entry))
      } catch {}
    }
    return children
  }

  /**
   * The server log kept so far (its last 4000 characters)
   */
  get output(): string {
    return this.#output
  }
}

/**
 * Blocks until the process shows as stopped in /proc (or is gone), for 5 s
 * at most: a SIGSTOP takes effect only when the process is next scheduled
 */
export function untilStopped(pid: number) {
  const pause = new Int32Array(new SharedArrayBuffer(4))
  for (let tries = 0; tries < 5000; tries++) {
    let state: string
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
      state = stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3)
    } catch {
      return
    }
    if (state === 'T' || state === 't' || state === 'Z') return
    Atomics.wait(pause, 0, 0, 1)
  }
}
