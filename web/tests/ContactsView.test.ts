import { describe, expect, it } from 'vitest'
import ContactsView from '../src/views/ContactsView.vue'
import { setPermissions, signIn } from '../src/session'
import { json, respond, calls } from './setup'
import { mountWithRouter, settle } from './mount'

const contact = (id: number, first: string) => ({ id, first_name: first, last_name: 'Smith', email: `${first}@x.example`, status: 'lead', tags: [], company_name: null, owner_name: 'Ada' })

class NoObserver {
  observe() {}
  disconnect() {}
}
globalThis.IntersectionObserver = NoObserver as never

describe('ContactsView', () => {
  it('searches as you type and shows the newest answer only', async () => {
    signIn(null, 't', null, { id: 1, email: 'a@x', first_name: 'A', last_name: 'B', role: 'admin' })
    setPermissions(['contacts:read:all', 'contacts:write:all'])
    respond((req) => {
      const url = new URL(req.url)
      if (url.pathname === '/api/v1/tags') return json({ data: [] })
      if (url.pathname !== '/api/v1/contacts') return undefined
      const search = url.searchParams.get('search')
      return json({ data: search ? [contact(2, 'John')] : [contact(1, 'Mary'), contact(2, 'John')], pagination: { next_cursor: null, has_next: false, total_count: search ? 1 : 2 } })
    })
    const { wrapper } = await mountWithRouter(ContactsView)
    await settle()
    expect(wrapper.findAll('[data-test=contact-row]')).toHaveLength(2)
    expect(wrapper.text()).toContain('New contact')
    await wrapper.get('input[name=search]').setValue('Jon Smtih')
    await new Promise((r) => setTimeout(r, 250))
    await settle()
    expect(wrapper.findAll('[data-test=contact-row]')).toHaveLength(1)
    expect(calls.some((c) => new URL(c.url).searchParams.get('search') === 'Jon Smtih')).toBe(true)
    wrapper.unmount()
  })

  it('a viewer sees no create or import controls', async () => {
    signIn(null, 't', null, { id: 1, email: 'v@x', first_name: 'V', last_name: 'V', role: 'viewer' })
    setPermissions(['contacts:read:all'])
    respond((req) => (new URL(req.url).pathname === '/api/v1/contacts' ? json({ data: [contact(1, 'Mary')], pagination: { next_cursor: null, has_next: false, total_count: 1 } }) : json({ data: [] })))
    const { wrapper } = await mountWithRouter(ContactsView)
    await settle()
    expect(wrapper.text()).not.toContain('New contact')
    expect(wrapper.text()).not.toContain('Import CSV')
    wrapper.unmount()
  })
})
