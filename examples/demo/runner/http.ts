import type { DemoServer } from './processes.ts'

export interface Reply {
  server: DemoServer
  status: number
  headers: Headers
  body: any
}

export async function post(
  server: DemoServer,
  path: string,
  body: Record<string, unknown>,
  headers: Record<string, string> = {}
): Promise<Reply> {
  const response = await fetch(`${server.url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'accept': 'application/json', ...headers },
    body: JSON.stringify(body),
  })
  const text = await response.text()
  let parsed: unknown = text
  try {
    parsed = JSON.parse(text)
  } catch {}
  return { server, status: response.status, headers: response.headers, body: parsed }
}

export async function get(server: DemoServer, path: string): Promise<any> {
  const response = await fetch(`${server.url}${path}`, { headers: { accept: 'application/json' } })
  return response.json()
}

export interface JobEvent {
  worker: string
  pid: number
  event: 'waiting' | 'acquired' | 'released' | 'gave up' | 'failed'
  waitedMs?: number
  fencingToken?: number
  at?: number
  heldUntil?: number
}

export interface Job {
  server: DemoServer
  /**
   * Resolves when the worker holds the lock
   */
  acquired: Promise<JobEvent>
  /**
   * Every event, once the worker is done
   */
  done: Promise<JobEvent[]>
  /**
   * Closes the request: the server releases the lock at once
   */
  cancel(): void
}

/**
 * POST /jobs/:name: a worker that waits for the lock `jobs.<name>` and
 * holds it for `ms`, read as its JSON lines arrive
 */
export function startJob(server: DemoServer, name: string, worker: string, ms: number): Job {
  const controller = new AbortController()
  const acquired = Promise.withResolvers<JobEvent>()
  const done = (async () => {
    const events: JobEvent[] = []
    const url = `${server.url}/jobs/${encodeURIComponent(name)}?worker=${encodeURIComponent(worker)}&ms=${ms}`
    try {
      const response = await fetch(url, { method: 'POST', signal: controller.signal })
      let buffered = ''
      for await (const chunk of response.body!.pipeThrough(new TextDecoderStream())) {
        buffered += chunk
        let newline: number
        while ((newline = buffered.indexOf('\n')) >= 0) {
          const event = JSON.parse(buffered.slice(0, newline)) as JobEvent
          buffered = buffered.slice(newline + 1)
          events.push(event)
          if (event.event === 'acquired') acquired.resolve(event)
        }
      }
    } catch (error) {
      if (!controller.signal.aborted) throw error
    } finally {
      acquired.reject(new Error(`${worker} on ${server.name} never held the lock`))
    }
    return events
  })()
  acquired.promise.catch(() => {})
  done.catch(() => {})
  return { server, acquired: acquired.promise, done, cancel: () => controller.abort() }
}
