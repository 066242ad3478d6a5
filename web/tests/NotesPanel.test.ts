import { describe, expect, it, vi } from 'vitest'
import NotesPanel from '../src/components/NotesPanel.vue'
import { setPermissions, signIn } from '../src/session'
import { calls, json, respond } from './setup'
import { mountWithRouter, settle } from './mount'

const note = (id: number, author: number, body: string) => ({ id, body, author_id: author, author_name: `Author ${author}`, contact_id: 7, created_at: '2026-11-30T10:00:00Z', updated_at: '2026-11-30T10:00:00Z' })
const page = (data: unknown[]) => json({ data, pagination: { next_cursor: null, has_next: false } })

function rep() {
  signIn(null, 't', null, { id: 1, email: 'a@x', first_name: 'A', last_name: 'B', role: 'sales_rep' })
  setPermissions(['activities:read:all', 'activities:write:own', 'activities:delete:own'])
}

describe('NotesPanel', () => {
  it('lists the contact\'s notes with line breaks; a rep deletes only their own', async () => {
    rep()
    vi.stubGlobal('confirm', () => true)
    let notes = [note(2, 1, 'mine\nsecond line'), note(1, 9, 'someone else')]
    respond((req) => {
      const url = new URL(req.url)
      if (url.pathname === '/api/v1/notes' && req.method === 'GET') {
        expect(url.searchParams.get('contact_id')).toBe('7')
        return page(notes)
      }
      if (url.pathname === '/api/v1/notes/2' && req.method === 'DELETE') {
        notes = notes.filter((n) => n.id !== 2)
        return new Response(null, { status: 204 })
      }
    })
    const { wrapper } = await mountWithRouter(NotesPanel, { contactId: 7 })
    await settle()
    const items = wrapper.findAll('[data-test="note"]')
    expect(items).toHaveLength(2)
    expect(items[0].text()).toContain('mine\nsecond line')
    expect(items[0].find('button').exists()).toBe(true)
    expect(items[1].find('button').exists()).toBe(false)
    await items[0].get('button').trigger('click')
    await settle()
    expect(calls.some((c) => c.method === 'DELETE' && c.url.endsWith('/api/v1/notes/2'))).toBe(true)
    expect(wrapper.findAll('[data-test="note"]')).toHaveLength(1)
    wrapper.unmount()
  })

  it('adds a note with POST /notes and shows it; an API refusal is shown', async () => {
    rep()
    const notes: ReturnType<typeof note>[] = []
    let posts = 0
    respond((req) => {
      const url = new URL(req.url)
      if (url.pathname === '/api/v1/notes' && req.method === 'GET') return page([...notes].reverse())
      if (url.pathname === '/api/v1/notes' && req.method === 'POST') {
        posts++
        if (posts === 2) return json({ error: 'contact_id: no such contact', code: 'REFERENCE_NOT_FOUND', details: { fields: { contact_id: 'no such contact' } } }, 422)
        return req.json().then((b: { body: string; contact_id: number }) => {
          expect(b).toEqual({ body: 'Called them', contact_id: 7 })
          const n = note(5, 1, b.body)
          notes.push(n)
          return json(n, 201)
        })
      }
    })
    const { wrapper } = await mountWithRouter(NotesPanel, { contactId: 7 })
    await settle()
    expect(wrapper.text()).toContain('No notes.')
    await wrapper.get('textarea[name=note]').setValue('  Called them ')
    await wrapper.get('form').trigger('submit')
    await settle()
    expect(wrapper.findAll('[data-test="note"]')).toHaveLength(1)
    expect(wrapper.get('[data-test="note"]').text()).toContain('Called them')
    expect((wrapper.get('textarea[name=note]').element as HTMLTextAreaElement).value).toBe('')
    await wrapper.get('textarea[name=note]').setValue('again')
    await wrapper.get('form').trigger('submit')
    await settle()
    expect(wrapper.get('[role=alert]').text()).toContain('no such contact')
    wrapper.unmount()
  })

  it('a viewer sees the notes of a company but no form and no delete', async () => {
    signIn(null, 't', null, { id: 3, email: 'v@x', first_name: 'V', last_name: 'W', role: 'viewer' })
    setPermissions(['activities:read:all'])
    respond((req) => {
      const url = new URL(req.url)
      if (url.pathname === '/api/v1/notes') {
        expect(url.searchParams.get('company_id')).toBe('4')
        return page([note(1, 3, 'hello')])
      }
    })
    const { wrapper } = await mountWithRouter(NotesPanel, { companyId: 4 })
    await settle()
    expect(wrapper.findAll('[data-test="note"]')).toHaveLength(1)
    expect(wrapper.find('form').exists()).toBe(false)
    expect(wrapper.find('button').exists()).toBe(false)
    wrapper.unmount()
  })
})
