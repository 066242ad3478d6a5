import { describe, expect, it } from 'vitest'
import TrashView from '../src/views/TrashView.vue'
import { setPermissions, signIn } from '../src/session'
import { calls, json, respond } from './setup'
import { mountWithRouter, settle } from './mount'

const page = (data: unknown[]) => json({ data, pagination: { next_cursor: null, has_next: false } })

describe('TrashView', () => {
  it('lists contacts, companies and deals newest deletion first; restores; shows a 409 EMAIL_TAKEN on its row', async () => {
    signIn(null, 't', null, { id: 1, email: 'm@x', first_name: 'M', last_name: 'G', role: 'manager' })
    setPermissions(['contacts:delete:all', 'companies:delete:all', 'deals:delete:all'])
    respond((req) => {
      const url = new URL(req.url)
      if (url.pathname === '/api/v1/trash') {
        expect(url.searchParams.get('type')).toBeNull()
        return page([
          { type: 'contact', id: 5, name: 'Ada Lovelace', email: 'ada@x', deleted_at: '2026-11-30T12:00:00Z', deleted_by: 1, purge_at: '2026-12-30T12:00:00Z', owner_id: 1, merged_into: null },
          { type: 'company', id: 6, name: 'Acme', email: null, deleted_at: '2026-11-28T12:00:00Z', deleted_by: 2, purge_at: '2026-12-28T12:00:00Z', owner_id: null, merged_into: null },
        ])
      }
      if (url.pathname === '/api/v1/trash/deals') return page([{ id: 9, title: 'Big deal', stage: 'lead', value: 1, currency: 'USD', deleted_at: '2026-11-29T12:00:00Z', deleted_by: 2, purge_at: '2026-12-29T12:00:00Z' }])
      if (url.pathname === '/api/v1/trash/deals/9/restore') return json({ id: 9, title: 'Big deal' })
      if (url.pathname === '/api/v1/trash/contacts/5/restore') return json({ error: 'A live contact has this email now', code: 'EMAIL_TAKEN', details: { fields: { email: 'taken by contact 12' } } }, 409)
    })
    const { wrapper } = await mountWithRouter(TrashView)
    await settle()
    const rows = wrapper.findAll('tbody tr')
    expect(rows.map((r) => r.attributes('data-test'))).toEqual(['trash-contact-5', 'trash-deal-9', 'trash-company-6'])
    expect(rows[0].text()).toContain('by you')
    expect(rows[1].text()).toContain('by user #2')

    await wrapper.get('[data-test="trash-deal-9"] button').trigger('click')
    await settle()
    expect(calls.some((c) => c.method === 'POST' && c.url.endsWith('/api/v1/trash/deals/9/restore'))).toBe(true)
    expect(wrapper.find('[data-test="trash-deal-9"]').exists()).toBe(false)

    await wrapper.get('[data-test="trash-contact-5"] button').trigger('click')
    await settle()
    expect(wrapper.get('[data-test="trash-contact-5"] [role=alert]').text()).toContain('A live contact has this email now')
    expect(wrapper.get('[data-test="trash-contact-5"] [role=alert]').text()).toContain('taken by contact 12')
    wrapper.unmount()
  })

  it('a sales rep asks for contacts only, and deal trash errors are shown', async () => {
    signIn(null, 't', null, { id: 1, email: 'r@x', first_name: 'R', last_name: 'P', role: 'sales_rep' })
    setPermissions(['contacts:delete:own', 'deals:delete:own'])
    respond((req) => {
      const url = new URL(req.url)
      if (url.pathname === '/api/v1/trash') {
        expect(url.searchParams.get('type')).toBe('contact')
        return page([])
      }
      if (url.pathname === '/api/v1/trash/deals') return json({ error: 'deal-service unavailable', code: 'SERVICE_UNAVAILABLE', details: null }, 503)
    })
    const { wrapper } = await mountWithRouter(TrashView)
    await settle()
    expect(wrapper.text()).toContain('Deals: deal-service unavailable')
    expect(wrapper.text()).toContain('The trash is empty.')
    wrapper.unmount()
  })
})
