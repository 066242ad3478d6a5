// The typed API client: openapi-fetch over the generated `paths` of the served OpenAPI
// document (schema.d.ts, `npm run api:generate`). Every call carries the session's bearer
// token; a 401 from any call but login clears the session and returns to /login (seed 003).
import createClient, { type Middleware } from 'openapi-fetch'
import type { components, paths } from './schema'
import { session, signOut } from '../session'

export type Schemas = components['schemas']

/** Called after a 401 cleared the session (the router sends the user to /login). */
let onUnauthorized: () => void = () => {}
export function setUnauthorizedHandler(handler: () => void) {
  onUnauthorized = handler
}

const auth: Middleware = {
  onRequest({ request }) {
    if (session.token && !request.headers.has('Authorization')) {
      request.headers.set('Authorization', `Bearer ${session.token}`)
    }
    return request
  },
  onResponse({ request, response }) {
    const path = new URL(request.url).pathname
    if (response.status === 401 && !path.startsWith('/api/v1/auth/login') && !path.startsWith('/api/v1/auth/register')) {
      signOut()
      onUnauthorized()
    }
    return response
  },
  // A network failure (server unreachable, the page unloading mid-request) becomes an answer
  // in the API's error shape, so every screen shows it like any other error instead of an
  // unhandled rejection. An abort the screen asked for stays an abort.
  onError({ error }) {
    if (error instanceof DOMException && error.name === 'AbortError') return error
    const body: ApiErrorBody = { error: 'The server cannot be reached: check your connection and try again.', code: 'NETWORK_ERROR', details: null }
    return new Response(JSON.stringify(body), { status: 503, headers: { 'content-type': 'application/json' } })
  },
}

export const api = createClient<paths>({ baseUrl: typeof location === 'undefined' ? 'http://localhost' : location.origin })
api.use(auth)

/** The API's error body (`{error, code, details, request_id}`). */
export interface ApiErrorBody {
  error: string
  code: string
  details?: { fields?: Record<string, string>; [key: string]: unknown } | null
  request_id?: string
}

/** Field name -> message of a 400 `VALIDATION_FAILED` (or 422 naming fields), else `{}`. */
export function fieldErrors(error: unknown): Record<string, string> {
  const body = error as ApiErrorBody | undefined
  return body?.details?.fields ?? {}
}

/** One line for a failed call: the API's message, with its code. */
export function errorMessage(error: unknown, fallback = 'Something went wrong'): string {
  const body = error as ApiErrorBody | undefined
  if (body && typeof body.error === 'string') return body.error
  return fallback
}
