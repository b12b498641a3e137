import { spawn, type ChildProcess } from 'node:child_process'
import net from 'node:net'
import { setTimeout as sleep } from 'node:timers/promises'
import { fileURLToPath } from 'node:url'

export const APP_ROOT = fileURLToPath(new URL('../', import.meta.url))

export interface DemoServer {
  name: string
  url: string
  pid: number
  output(): string
  stop(): Promise<void>
}

/**
 * Runs `node ace <args>` in the demo app and returns its output
 */
export function ace(
  args: string[],
  env: NodeJS.ProcessEnv
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['ace.js', ...args], {
      cwd: APP_ROOT,
      env: { ...process.env, ...env, FORCE_COLOR: '0', NO_COLOR: '1' },
      stdio: ['ignore', 'pipe', 'pipe'],
    })
    let output = ''
    child.stdout.on('data', (chunk) => (output += chunk))
    child.stderr.on('data', (chunk) => (output += chunk))
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
    child.once('error', reject)
    child.once('close', (code) => {
      clearTimeout(timer)
      resolve({ code, output })
    })
  })
}

export function portOpen(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1')
    socket.once('connect', () => {
      socket.destroy()
      resolve(true)
    })
    socket.once('error', () => resolve(false))
  })
}

/**
 * `preferred` when nothing listens on it, else any free port
 */
export function freePort(preferred: number): Promise<number> {
  const listen = (port: number) =>
    new Promise<number>((resolve, reject) => {
      const server = net.createServer()
      server.once('error', reject)
      server.listen(port, '127.0.0.1', () => {
        const { port: bound } = server.address() as net.AddressInfo
        server.close(() => resolve(bound))
      })
    })
  return listen(preferred).catch(() => listen(0))
}

/**
 * `node bin/server.ts` of the demo app, ready once it answers /health.
 * In its own process group, so Ctrl-C reaches the runner only and the
 * runner stops the servers in order.
 */
export async function startServer(
  name: string,
  port: number,
  env: NodeJS.ProcessEnv
): Promise<DemoServer> {
  const child: ChildProcess = spawn(
    process.execPath,
    ['--import=@poppinss/ts-exec', 'bin/server.ts'],
    {
      cwd: APP_ROOT,
      env: { ...process.env, ...env, PORT: String(port), HOST: '127.0.0.1' },
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    }
  )
  let output = ''
  child.stdout!.on('data', (chunk) => (output += chunk))
  child.stderr!.on('data', (chunk) => (output += chunk))
  let running = true
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
  exited.then(() => (running = false))
  const killOnExit = () => child.kill('SIGKILL')
  process.once('exit', killOnExit)

  const server: DemoServer = {
    name,
    url: `http://127.0.0.1:${port}`,
    pid: child.pid!,
    output: () => output,
    async stop() {
      if (running) {
        child.kill('SIGTERM')
        const stopped = await Promise.race([exited.then(() => true), sleep(10_000, false)])
        if (!stopped) child.kill('SIGKILL')
        await exited
      }
      process.off('exit', killOnExit)
    },
  }

  const deadline = Date.now() + 60_000
  while (Date.now() < deadline) {
    if (!running) throw new Error(`server ${name} exited while booting:\n${output}`)
    try {
      const response = await fetch(`${server.url}/health`)
      if (response.ok) return server
    } catch {}
    await sleep(200)
  }
  await server.stop()
  throw new Error(`server ${name} did not answer within 60 s:\n${output}`)
}
