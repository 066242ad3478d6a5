import { describe, expect, it } from 'vitest'
import { mount } from '@vue/test-utils'
import ContactForm from '../src/components/ContactForm.vue'
import { json, respond, calls } from './setup'
import { settle } from './mount'

describe('ContactForm', () => {
  it("shows the API's per-field errors beside each field and keeps the input", async () => {
    respond((req) =>
      req.method === 'POST'
        ? json({ error: 'validation failed', code: 'VALIDATION_FAILED', details: { fields: { email: 'invalid email format', first_name: 'must not be empty' } }, request_id: 'r' }, 400)
        : undefined,
    )
    const w = mount(ContactForm)
    await w.get('input[name=email]').setValue('not-an-email')
    await w.get('form').trigger('submit')
    await settle()
    expect(w.get('[data-field-error=email]').text()).toBe('invalid email format')
    expect(w.get('[data-field-error=first_name]').text()).toBe('must not be empty')
    expect(w.get('input[name=email]').attributes('aria-invalid')).toBe('true')
    expect(w.get('input[name=email]').attributes('aria-describedby')).toBe('err-email')
    expect((w.get('input[name=email]').element as HTMLInputElement).value).toBe('not-an-email')
    expect(w.find('[data-field-error=last_name]').exists()).toBe(false)
  })

  it('creates with the typed fields and emits the saved contact', async () => {
    respond((req) => (req.method === 'POST' ? json({ id: 42, first_name: 'Ada', last_name: 'L' }, 201, { ETag: '"v1"' }) : undefined))
    const w = mount(ContactForm)
    await w.get('input[name=first_name]').setValue('Ada')
    await w.get('input[name=last_name]').setValue('L')
    await w.get('input[name=tags]').setValue('vip, emea ,')
    await w.get('form').trigger('submit')
    await settle()
    const body = await calls[0].json()
    expect(body).toMatchObject({ first_name: 'Ada', last_name: 'L', tags: ['vip', 'emea'], status: 'lead' })
    expect(w.emitted('saved')?.[0]).toEqual([{ id: 42, first_name: 'Ada', last_name: 'L' }, '"v1"'])
  })

  it('edits with If-Match and explains a 412', async () => {
    respond((req) => (req.method === 'PATCH' ? json({ error: 'changed', code: 'PRECONDITION_FAILED', details: { etag: '"v2"' }, request_id: 'r' }, 412) : undefined))
    const contact = { id: 5, first_name: 'A', last_name: 'B', email: '', phone: '', job_title: '', status: 'lead', source: '', tags: [], notes: '' }
    const w = mount(ContactForm, { props: { contact: contact as never, etag: '"v1"' } })
    await w.get('form').trigger('submit')
    await settle()
    expect(calls[0].headers.get('If-Match')).toBe('"v1"')
    expect(w.get('[role=alert]').text()).toContain('Someone changed this contact')
  })
})
