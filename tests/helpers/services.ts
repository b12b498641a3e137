import net from 'node:net'

export const SERVICES = {
  redis: { host: '127.0.0.1', port: 6379 },
  postgres: { host: '127.0.0.1', port: 5432, user: 'postgres', database: 'test' },
  mariadb: { host: '127.0.0.1', port: 3306, user: 'root', password: '', database: 'test' },
} as const

export type ServiceName = keyof typeof SERVICES

const checked = new Map<ServiceName, Promise<boolean>>()

export function canConnect(port: number, host = '127.0.0.1', timeout = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host })
    const done = (ok: boolean) => {
      socket.destroy()
      resolve(ok)
    }
    socket.setTimeout(timeout, () => done(false))
    socket.once('connect', () => done(true))
    socket.once('error', () => done(false))
  })
}

/**
 * Whether a real service is there. In CI a missing service fails the
 * run; elsewhere its tests are skipped with a loud message.
 */
export function serviceAvailable(name: ServiceName): Promise<boolean> {
  let check = checked.get(name)
  if (!check) {
    const { host, port } = SERVICES[name]
    check = canConnect(port, host).then((reachable) => {
      if (reachable) return true
      const message = `${name} is not reachable on ${host}:${port}`
      if (process.env.CI) throw new Error(`${message}; CI needs it (.ci/run starts it)`)
      console.warn(`\n!!! ${message}: its tests are SKIPPED. Start it to run them.\n`)
      return false
    })
    checked.set(name, check)
  }
  return check
}

/**
 * A key no other test (or earlier run) uses
 */
export function uniqueKey(label = 'key'): string {
  return `${label}:${process.pid}:${Date.now().toString(36)}:${Math.random().toString(36).slice(2, 10)}`
}
