/**
 * Private redis-server instances for the tests that stop servers or need a
 * cluster: started from the Debian `redis-server` binary on spare loopback
 * ports, in a temporary directory, and killed by the test that started them.
 * The shared server on 6379 is never touched.
 */
import { execFile, spawn, spawnSync, type ChildProcess } from 'node:child_process'
import { rmSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import net from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { promisify } from 'node:util'
import { sleep } from '../../src/wait.ts'

const run = promisify(execFile)

/**
 * Whether `redis-server` and `redis-cli` are installed. In CI a missing
 * binary fails the run; elsewhere its tests are skipped with a loud message.
 */
export function redisBinariesAvailable(): boolean {
  const found = ['redis-server', 'redis-cli'].every(
    (binary) => spawnSync(binary, ['--version'], { stdio: 'ignore' }).status === 0
  )
  if (found) return true
  const message = 'redis-server / redis-cli are not installed (Debian package redis-server)'
  if (process.env.CI) throw new Error(`${message}; CI needs them`)
  console.warn(`\n!!! ${message}: the private Redis server tests are SKIPPED.\n`)
  return false
}

/**
 * A free loopback port, as the OS hands it out
 */
export function sparePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo
      server.close(() => resolve(port))
    })
  })
}

/**
 * Servers still running when the test process exits are killed and their
 * directories removed, so an aborted run leaves nothing behind
 */
const running = new Set<ChildProcess>()
const directories = new Set<string>()
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL')
  for (const dir of directories) rmSync(dir, { recursive: true, force: true })
})

/**
 * Sends one inline command and returns the first reply line
 */
export function redisCommand(port: number, command: string, timeout = 1000): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1' })
    let reply = ''
    const fail = (error: Error) => {
      socket.destroy()
      reject(error)
    }
    socket.setTimeout(timeout, () => fail(new Error(`no reply to ${command} on ${port}`)))
    socket.once('error', fail)
    socket.once('connect', () => socket.write(`${command}\r\n`))
    socket.on('data', (chunk) => {
      reply += chunk.toString()
      if (!reply.includes('\r\n')) return
      socket.destroy()
      resolve(reply.split('\r\n')[0])
    })
  })
}

export class RedisServer {
  readonly host = '127.0.0.1'
  #child: ChildProcess | undefined
  #output = ''

  constructor(
    readonly port: number,
    readonly dir: string,
    readonly args: string[] = []
  ) {}

  /**
   * Starts a server on a spare port (a given one to come back on the same)
   */
  static async start(options: { port?: number; args?: string[] } = {}): Promise<RedisServer> {
    const dir = await mkdtemp(join(tmpdir(), 'adonis-lock-redis-'))
    directories.add(dir)
    const server = new RedisServer(options.port ?? (await sparePort()), dir, options.args)
    await server.start()
    return server
  }

  get running(): boolean {
    return this.#child !== undefined
  }

  async start(): Promise<void> {
    if (this.#child) return
    this.#output = ''
    const child = spawn(
      'redis-server',
      [
        '--port',
        String(this.port),
        '--bind',
        '127.0.0.1',
        '--save',
        '',
        '--appendonly',
        'no',
        '--daemonize',
        'no',
        '--dir',
        this.dir,
        '--loglevel',
        'warning',
        ...this.args,
      ],
      { stdio: ['ignore', 'pipe', 'pipe'] }
    )
    /**
     * Read the output so the server never blocks on a full pipe; the end of
     * it explains a server that did not come up
     */
    const keep = (chunk: Buffer) => (this.#output = (this.#output + chunk.toString()).slice(-4000))
    child.stdout!.on('data', keep)
    child.stderr!.on('data', keep)
    running.add(child)
    child.once('exit', () => {
      running.delete(child)
      if (this.#child === child) this.#child = undefined
    })
    this.#child = child

    for (let attempt = 0; attempt < 200; attempt++) {
      if (!this.#child) break
      if ((await redisCommand(this.port, 'PING').catch(() => '')) === '+PONG') return
      await sleep(50)
    }
    await this.stop()
    throw new Error(`redis-server did not start on ${this.port}:\n${this.#output}`)
  }

  /**
   * Kills the server (SIGKILL when SIGTERM is not enough) and waits until it is gone
   */
  async stop(): Promise<void> {
    const child = this.#child
    if (!child) return
    const exited = new Promise((resolve) => child.once('exit', resolve))
    child.kill('SIGTERM')
    const timer = setTimeout(() => child.kill('SIGKILL'), 5000)
    await exited
    clearTimeout(timer)
  }

  async restart(): Promise<void> {
    await this.stop()
    await this.start()
  }

  /**
   * Stops the server and removes its directory
   */
  async destroy(): Promise<void> {
    await this.stop()
    await rm(this.dir, { recursive: true, force: true })
    directories.delete(this.dir)
  }
}

/**
 * A cluster of masters without replicas, each on its own spare ports
 */
export class RedisCluster {
  constructor(readonly servers: RedisServer[]) {}

  get nodes(): Array<{ host: string; port: number }> {
    return this.servers.map(({ host, port }) => ({ host, port }))
  }

  static async start(masters = 3): Promise<RedisCluster> {
    const servers: RedisServer[] = []
    const cluster = new RedisCluster(servers)
    try {
      for (let index = 0; index < masters; index++) {
        const busPort = await sparePort()
        servers.push(
          await RedisServer.start({
            args: [
              '--cluster-enabled',
              'yes',
              '--cluster-config-file',
              'nodes.conf',
              '--cluster-port',
              String(busPort),
              '--cluster-node-timeout',
              '5000',
            ],
          })
        )
      }
      await run(
        'redis-cli',
        [
          '--cluster',
          'create',
          ...servers.map((server) => `127.0.0.1:${server.port}`),
          '--cluster-replicas',
          '0',
          '--cluster-yes',
        ],
        { timeout: 60_000 }
      )
      await cluster.#waitUntilReady()
      return cluster
    } catch (error) {
      await cluster.destroy()
      throw error
    }
  }

  /**
   * Every node sees the cluster ok, with every node in it
   */
  async #waitUntilReady() {
    for (let attempt = 0; attempt < 300; attempt++) {
      const states = await Promise.all(
        this.servers.map(async (server) => {
          const { stdout } = await run('redis-cli', ['-p', String(server.port), 'cluster', 'info'])
          return (
            stdout.includes('cluster_state:ok') &&
            stdout.includes(`cluster_known_nodes:${this.servers.length}`)
          )
        })
      )
      if (states.every(Boolean)) return
      await sleep(100)
    }
    throw new Error('the Redis cluster did not reach cluster_state:ok')
  }

  async destroy(): Promise<void> {
    await Promise.all(this.servers.map((server) => server.destroy()))
  }
}
