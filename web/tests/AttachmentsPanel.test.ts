import { describe, expect, it, vi } from 'vitest'
import AttachmentsPanel from '../src/components/AttachmentsPanel.vue'
import { setPermissions, signIn } from '../src/session'
import { calls, json, respond } from './setup'
import { mountWithRouter, settle } from './mount'

const file = (id: number, name: string, size: number, by = 1) => ({ id, file_name: name, content_type: 'application/pdf', size_bytes: size, sha256: 'ab', uploaded_by: by, contact_id: 7, created_at: '2026-11-30T10:00:00Z' })
const page = (data: unknown[]) => json({ data, pagination: { next_cursor: null, has_next: false } })

describe('AttachmentsPanel', () => {
  it('lists files with size and type, uploads one as multipart, downloads with the token, deletes', async () => {
    signIn(null, 'tok', null, { id: 1, email: 'a@x', first_name: 'A', last_name: 'B', role: 'sales_rep' })
    setPermissions(['activities:read:all', 'activities:write:own', 'activities:delete:own'])
    vi.stubGlobal('confirm', () => true)
    const created = vi.fn(() => 'blob:x')
    URL.createObjectURL = created
    URL.revokeObjectURL = () => {}
    let files = [file(1, 'offer.pdf', 1536), file(2, 'theirs.pdf', 10, 9)]
    let uploaded: FormData | null = null
    respond(async (req) => {
      const url = new URL(req.url)
      if (url.pathname === '/api/v1/attachments' && req.method === 'GET') {
        expect(url.searchParams.get('contact_id')).toBe('7')
        return page(files)
      }
      if (url.pathname === '/api/v1/attachments' && req.method === 'POST') {
        uploaded = await req.formData()
        files = [file(3, 'notes.txt', 5), ...files]
        return json(files[0], 201)
      }
      if (url.pathname === '/api/v1/attachments/1/content') {
        expect(req.headers.get('Authorization')).toBe('Bearer tok')
        return new Response(new Blob(['%PDF']), { status: 200, headers: { 'content-type': 'application/pdf' } })
      }
      if (url.pathname === '/api/v1/attachments/1' && req.method === 'DELETE') return new Response(null, { status: 204 })
    })
    const { wrapper } = await mountWithRouter(AttachmentsPanel, { contactId: 7 })
    await settle()
    const rows = wrapper.findAll('[data-test="attachment"]')
    expect(rows).toHaveLength(2)
    expect(rows[0].text()).toContain('offer.pdf')
    expect(rows[0].text()).toContain('1.5 KB')
    expect(rows[0].text()).toContain('application/pdf')
    expect(rows[1].find('button').exists()).toBe(false)

    const input = wrapper.get('input[type=file]').element as HTMLInputElement
    Object.defineProperty(input, 'files', { value: [new File(['hello'], 'notes.txt', { type: 'text/plain' })], configurable: true })
    await wrapper.get('form').trigger('submit')
    await settle()
    expect(uploaded).not.toBeNull()
    expect(uploaded!.get('contact_id')).toBe('7')
    expect((uploaded!.get('file') as File).name).toBe('notes.txt')
    expect(wrapper.findAll('[data-test="attachment"]')).toHaveLength(3)

    await wrapper.findAll('[data-test="attachment"]')[1].get('a').trigger('click')
    await settle()
    expect(created).toHaveBeenCalled()

    await wrapper.findAll('[data-test="attachment"]')[1].get('button').trigger('click')
    await settle()
    expect(calls.some((c) => c.method === 'DELETE' && c.url.endsWith('/api/v1/attachments/1'))).toBe(true)
    expect(wrapper.text()).not.toContain('offer.pdf')
    wrapper.unmount()
  })

  it('a viewer lists files but gets no upload form and no delete', async () => {
    signIn(null, 't', null, { id: 3, email: 'v@x', first_name: 'V', last_name: 'W', role: 'viewer' })
    setPermissions(['activities:read:all'])
    respond((req) => (new URL(req.url).pathname === '/api/v1/attachments' ? page([file(1, 'a.pdf', 10, 3)]) : undefined))
    const { wrapper } = await mountWithRouter(AttachmentsPanel, { contactId: 7 })
    await settle()
    expect(wrapper.findAll('[data-test="attachment"]')).toHaveLength(1)
    expect(wrapper.find('input[type=file]').exists()).toBe(false)
    expect(wrapper.find('button').exists()).toBe(false)
    wrapper.unmount()
  })
})
