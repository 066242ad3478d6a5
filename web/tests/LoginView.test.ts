import { describe, expect, it } from 'vitest'
import { mount } from '@vue/test-utils'
import { createMemoryHistory, createRouter } from 'vue-router'
import LoginView from '../src/views/LoginView.vue'
import { can, session } from '../src/session'
import { calls, json, respond } from './setup'
import { settle } from './mount'

describe('LoginView', () => {
  it("names the subdomain's tenant, logs in with the Host's tenant and loads the role's permissions", async () => {
    ;(window as unknown as { happyDOM: { setURL(u: string): void } }).happyDOM.setURL('http://acme.localhost:8000/login')
    respond((req) => {
      const path = new URL(req.url).pathname
      if (path === '/api/v1/tenants/by-subdomain/acme') return json({ id: 'T1', name: 'Acme Inc', subdomain: 'acme', status: 'active' })
      if (path === '/api/v1/auth/login') return json({ access_token: 'A', refresh_token: 'R', token_type: 'Bearer', expires_in: 60, expires_at: '2030-01-01T00:00:00Z', user: { id: 3, email: 'ada@acme.example', first_name: 'Ada', last_name: 'L', role: 'manager' } })
      if (path === '/api/v1/auth/me') return json({ id: 3, email: 'ada@acme.example', first_name: 'Ada', last_name: 'L', role: 'manager', permissions: ['contacts:write:all'] })
    })
    const router = createRouter({ history: createMemoryHistory(), routes: [{ path: '/:rest(.*)*', component: { template: '<div />' } }] })
    await router.push('/login')
    const w = mount(LoginView, { global: { plugins: [router] } })
    await settle()
    expect(w.get('[data-test=tenant-name]').text()).toBe('Acme Inc')
    expect(w.find('input[name=tenant]').exists()).toBe(false)
    await w.get('input[name=email]').setValue('ada@acme.example')
    await w.get('input[name=password]').setValue('correct horse')
    await w.get('form').trigger('submit')
    await settle(10)
    const login = calls.find((c) => new URL(c.url).pathname === '/api/v1/auth/login')!
    expect(await login.json()).toEqual({ email: 'ada@acme.example', password: 'correct horse' })
    expect(session.token).toBe('A')
    expect(session.tenantName).toBe('Acme Inc')
    expect(can('contacts', 'write')).toBe(true)
    expect(router.currentRoute.value.path).toBe('/contacts')
  })

  it('a wrong password says so and keeps the user signed out', async () => {
    ;(window as unknown as { happyDOM: { setURL(u: string): void } }).happyDOM.setURL('http://acme.localhost:8000/login')
    respond((req) => {
      const path = new URL(req.url).pathname
      if (path === '/api/v1/tenants/by-subdomain/acme') return json({ id: 'T1', name: 'Acme Inc', subdomain: 'acme', status: 'active' })
      if (path === '/api/v1/auth/login') return json({ error: 'invalid email or password', code: 'INVALID_CREDENTIALS', details: null, request_id: 'r' }, 401)
    })
    const router = createRouter({ history: createMemoryHistory(), routes: [{ path: '/:rest(.*)*', component: { template: '<div />' } }] })
    await router.push('/login')
    const w = mount(LoginView, { global: { plugins: [router] } })
    await settle()
    await w.get('form').trigger('submit')
    await settle(10)
    expect(w.get('[role=alert]').text()).toBe('Wrong email or password.')
    expect(session.token).toBeNull()
  })
})
