// Every component test talks to a fake API: `fetch` is replaced before the client is created,
// and each test lists the answers it expects with `respond(...)`.
import { beforeEach, vi } from 'vitest'
import { signOut } from '../src/session'

export type Handler = (req: Request) => Response | undefined | Promise<Response | undefined>

const handlers: Handler[] = []
export const calls: Request[] = []

/** Adds a handler: it answers a request when it returns a Response. */
export function respond(handler: Handler) {
  handlers.push(handler)
}
export function json(body: unknown, status = 200, headers: Record<string, string> = {}) {
  return new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } })
}

vi.stubGlobal('fetch', async (input: RequestInfo | URL, init?: RequestInit) => {
  const req = input instanceof Request ? input : new Request(input, init)
  calls.push(req.clone())
  for (const h of [...handlers].reverse()) {
    const r = await h(req)
    if (r) return r
  }
  return json({ error: 'no handler', code: 'NOT_FOUND', details: null, request_id: 't' }, 404)
})

beforeEach(() => {
  handlers.length = 0
  calls.length = 0
  signOut()
  localStorage.clear()
})
