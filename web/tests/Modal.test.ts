import { describe, expect, it } from 'vitest'
import { mount } from '@vue/test-utils'
import { h } from 'vue'
import Modal from '../src/components/Modal.vue'
import { settle } from './mount'

describe('Modal', () => {
  it('takes the focus, keeps Tab inside, and closes on Escape', async () => {
    const w = mount(Modal, { props: { title: 'Edit' }, slots: { default: () => [h('input', { name: 'a' }), h('button', 'Save')] }, attachTo: document.body })
    await settle()
    expect(document.activeElement?.getAttribute('name')).toBe('a')
    ;(w.get('button').element as HTMLElement).focus()
    document.dispatchEvent(new KeyboardEvent('keydown', { key: 'Tab' }))
    expect(document.activeElement?.getAttribute('name')).toBe('a')
    document.dispatchEvent(new KeyboardEvent('keydown', { key: 'Tab', shiftKey: true }))
    expect(document.activeElement?.tagName).toBe('BUTTON')
    document.dispatchEvent(new KeyboardEvent('keydown', { key: 'Escape' }))
    expect(w.emitted('close')).toHaveLength(1)
    w.unmount()
  })
})
