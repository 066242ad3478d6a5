import { describe, expect, it } from 'vitest'
import TasksView from '../src/views/TasksView.vue'
import { setPermissions, signIn } from '../src/session'
import { toast } from '../src/toast'
import { json, respond } from './setup'
import { mountWithRouter, settle } from './mount'

const task = (id: number, status: string, due: string | null) => ({ id, title: `Task ${id}`, status, due_date: due, priority: 'normal', assigned_to: 1 })

describe('TasksView', () => {
  it('groups overdue, due soon and done; a refused completion is rolled back', async () => {
    signIn(null, 't', null, { id: 1, email: 'a@x', first_name: 'A', last_name: 'B', role: 'sales_rep' })
    setPermissions(['tasks:read:all', 'tasks:write:own'])
    respond((req) => {
      const url = new URL(req.url)
      if (url.pathname === '/api/v1/tasks/mine') {
        const done = url.searchParams.get('status') === 'completed'
        return json({ data: done ? [task(3, 'completed', null)] : [task(1, 'pending', '2000-01-01T00:00:00Z'), task(2, 'pending', null)], pagination: { next_cursor: null, has_next: false } })
      }
      if (url.pathname === '/api/v1/tasks/1' && req.method === 'PATCH') return json({ error: 'database unavailable', code: 'SERVICE_UNAVAILABLE', details: null, request_id: 'r' }, 503)
    })
    const { wrapper } = await mountWithRouter(TasksView)
    await settle()
    const group = (name: string) => wrapper.get(`[data-test="tasks-${name}"]`)
    expect(group('Overdue').text()).toContain('Task 1')
    expect(group('Due soon').text()).toContain('Task 2')
    expect(group('Done').text()).toContain('Task 3')
    await group('Overdue').get('input[type=checkbox]').setValue(true)
    await settle()
    expect(group('Overdue').text()).toContain('Task 1')
    expect(group('Done').text()).not.toContain('Task 1')
    expect(toast.error).toBe(true)
    expect(toast.text).toContain('database unavailable')
    wrapper.unmount()
  })
})
