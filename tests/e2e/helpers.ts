import { spawn, type ChildProcess } from 'node:child_process'
import { cp, mkdir, readdir, symlink } from 'node:fs/promises'
import net from 'node:net'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { sleep } from '../../src/wait.ts'

export const PACKAGE_ROOT = fileURLToPath(new URL('../../', import.meta.url))
const NODE_MODULES = join(PACKAGE_ROOT, 'node_modules')

/**
 * Node 24 and the package's tools first: npm scripts and `node ace` run
 * with them
 */
export const ENV = {
  ...process.env,
  PATH: `${join(NODE_MODULES, '.bin')}:${process.env.PATH}`,
  FORCE_COLOR: '0',
  NO_COLOR: '1',
}

export interface RunResult {
  code: number | null
  stdout: string
  stderr: string
  output: string
}

/**
 * Runs a command to its end, without a terminal (stdin is closed)
 */
export function run(
  command: string,
  args: string[],
  options: { cwd: string; env?: NodeJS.ProcessEnv; timeout?: number }
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: { ...ENV, ...options.env },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let stdout = ''
    let stderr = ''
    child.stdout.on('data', (chunk) => (stdout += chunk))
    child.stderr.on('data', (chunk) => (stderr += chunk))
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeout ?? 120_000)
    child.once('error', (error) => {
      clearTimeout(timer)
      reject(error)
    })
    child.once('close', (code) => {
      clearTimeout(timer)
      resolve({ code, stdout, stderr, output: `${stdout}\n${stderr}` })
    })
  })
}

/**
 * `node ace ...` in the app, through the app's own ace.js
 */
export function ace(appRoot: string, args: string[], env: NodeJS.ProcessEnv = {}) {
  return run(process.execPath, ['ace.js', ...args], { cwd: appRoot, env })
}

export async function expectSuccess(result: Promise<RunResult>, label: string) {
  const done = await result
  if (done.code !== 0) {
    throw new Error(`${label} exited with ${done.code}\n${done.output}`)
  }
  return done
}

/**
 * Copies the package sources (what the build needs, not its tests) and
 * packs them as npm publishes them: `prepack` runs the real build
 */
export async function packPackage(stageRoot: string): Promise<string> {
  const source = join(stageRoot, 'package')
  const skipped = new Set([
    'node_modules',
    '.git',
    'tmp',
    'build',
    'coverage',
    'tests',
    'benchmarks',
    'bin',
  ])
  await mkdir(source, { recursive: true })
  for (const entry of await readdir(PACKAGE_ROOT)) {
    if (skipped.has(entry)) continue
    await cp(join(PACKAGE_ROOT, entry), join(source, entry), { recursive: true })
  }
  await symlink(NODE_MODULES, join(source, 'node_modules'), 'dir')
  const packed = await expectSuccess(
    run('npm', ['pack', '--json', '--pack-destination', stageRoot], {
      cwd: source,
      timeout: 180_000,
    }),
    'npm pack'
  )
  const [{ filename }] = JSON.parse(packed.stdout.slice(packed.stdout.indexOf('[')))
  return join(stageRoot, filename)
}

/**
 * The app's node_modules: this package's dependencies, linked, and the
 * packed tarball extracted as `npm install <tgz>` would
 */
export async function installPackage(appRoot: string, tarball: string) {
  const modules = join(appRoot, 'node_modules')
  await mkdir(modules, { recursive: true })
  for (const entry of await readdir(NODE_MODULES)) {
    if (entry === 'adonis-lock') continue
    await symlink(join(NODE_MODULES, entry), join(modules, entry))
  }
  const target = join(modules, 'adonis-lock')
  await mkdir(target)
  await expectSuccess(
    run('tar', ['-xzf', tarball, '-C', target, '--strip-components=1'], { cwd: appRoot }),
    'tar'
  )
}

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address() as net.AddressInfo
      server.close(() => resolve(port))
    })
  })
}

export interface AppServer {
  url: string
  output: () => string
  stop(): Promise<void>
}

/**
 * `node bin/server.ts` of the app, ready when it answers /health
 */
export async function startServer(appRoot: string): Promise<AppServer> {
  const port = await freePort()
  const child: ChildProcess = spawn(
    process.execPath,
    ['--import=@poppinss/ts-exec', 'bin/server.ts'],
    {
      cwd: appRoot,
      env: { ...ENV, PORT: String(port), HOST: '127.0.0.1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    }
  )
  let output = ''
  child.stdout!.on('data', (chunk) => (output += chunk))
  child.stderr!.on('data', (chunk) => (output += chunk))
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  let running = true
  exited.then(() => (running = false))

  const server: AppServer = {
    url: `http://127.0.0.1:${port}`,
    output: () => output,
    async stop() {
      if (!running) return
      child.kill('SIGTERM')
      const killed = await Promise.race([exited.then(() => true), sleep(15_000).then(() => false)])
      if (!killed) {
        child.kill('SIGKILL')
        await exited
      }
    },
  }

  const deadline = Date.now() + 60_000
  while (Date.now() < deadline) {
    if (!running) throw new Error(`The app server exited while booting\n${output}`)
    try {
      const response = await fetch(`${server.url}/health`)
      if (response.ok) return server
    } catch {}
    await sleep(200)
  }
  await server.stop()
  throw new Error(`The app server did not answer within 60s\n${output}`)
}

/**
 * Fires `count` requests at once, spread over the servers, and counts
 * the statuses
 */
export async function burst(
  servers: AppServer[],
  path: string,
  count: number,
  body: Record<string, unknown> = {}
) {
  const responses = await Promise.all(
    Array.from({ length: count }, async (_, index) => {
      const response = await fetch(`${servers[index % servers.length].url}${path}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'accept': 'application/json' },
        body: JSON.stringify(body),
      })
      return {
        status: response.status,
        retryAfter: response.headers.get('retry-after'),
        body: (await response.json().catch(() => null)) as Record<string, any> | null,
      }
    })
  )
  const statuses: Record<number, number> = {}
  for (const { status } of responses) statuses[status] = (statuses[status] ?? 0) + 1
  return { statuses, responses }
}
