import { describe, expect, it, vi } from 'vitest'
import { api, fieldErrors, setUnauthorizedHandler } from '../src/api/client'
import { session, signIn } from '../src/session'
import { json, respond, calls } from './setup'

describe('api client', () => {
  it('sends the bearer token on every call', async () => {
    signIn(null, 'the-token', null, { id: 1, email: 'a@x', first_name: 'A', last_name: 'B', role: 'admin' })
    respond(() => json({ data: [], pagination: { next_cursor: null, has_next: false, total_count: 0 } }))
    await api.GET('/api/v1/contacts', {})
    expect(calls[0].headers.get('Authorization')).toBe('Bearer the-token')
  })

  it('a 401 clears the session and calls the handler (the app goes to /login)', async () => {
    signIn(null, 'stale', null, { id: 1, email: 'a@x', first_name: 'A', last_name: 'B', role: 'admin' })
    const handler = vi.fn()
    setUnauthorizedHandler(handler)
    respond(() => json({ error: 'token expired', code: 'UNAUTHORIZED', details: null, request_id: 'r' }, 401))
    await api.GET('/api/v1/contacts', {})
    expect(session.token).toBeNull()
    expect(handler).toHaveBeenCalledOnce()
  })

  it('a failed login is not a lost session', async () => {
    const handler = vi.fn()
    setUnauthorizedHandler(handler)
    respond(() => json({ error: 'invalid credentials', code: 'INVALID_CREDENTIALS', details: null, request_id: 'r' }, 401))
    await api.POST('/api/v1/auth/login', { body: { email: 'a@x', password: 'nope' } as never })
    expect(handler).not.toHaveBeenCalled()
  })

  it('reads per-field errors', () => {
    expect(fieldErrors({ error: 'x', code: 'VALIDATION_FAILED', details: { fields: { email: 'invalid email format' } } })).toEqual({ email: 'invalid email format' })
    expect(fieldErrors(undefined)).toEqual({})
  })
})

describe('network failures', () => {
  it('become an error answer, not an exception', async () => {
    const { respond: add } = await import('./setup')
    add(() => {
      throw new TypeError('Failed to fetch')
    })
    const r = await api.GET('/api/v1/contacts', {})
    expect(r.response.status).toBe(503)
    expect((r.error as { code: string }).code).toBe('NETWORK_ERROR')
  })
})
