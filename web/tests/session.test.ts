import { describe, expect, it } from 'vitest'
import { can, setPermissions, signIn, signOut, tenantFromHost } from '../src/session'

describe('session', () => {
  it('takes the tenant from the first label of the host', () => {
    expect(tenantFromHost('acme.localhost')).toBe('acme')
    expect(tenantFromHost('acme.crm.example.com')).toBe('acme')
    expect(tenantFromHost('localhost')).toBeNull()
    expect(tenantFromHost('127.0.0.1')).toBeNull()
  })

  it('reads role permissions with their scope', () => {
    signIn({ id: 't', name: 'Acme' }, 'tok', 'ref', { id: 7, email: 'a@x', first_name: 'A', last_name: 'B', role: 'sales_rep' })
    setPermissions(['contacts:read:all', 'contacts:write:own', 'users:read:all'])
    expect(can('contacts', 'read')).toBe(true)
    expect(can('contacts', 'write')).toBe(true)
    expect(can('contacts', 'write', 7)).toBe(true)
    expect(can('contacts', 'write', 8)).toBe(false)
    expect(can('contacts', 'delete')).toBe(false)
    expect(can('pipeline_stages', 'write')).toBe(false)
    signOut()
    expect(can('contacts', 'read')).toBe(false)
  })

  it('a viewer may write nothing', () => {
    signIn(null, 'tok', null, { id: 1, email: 'v@x', first_name: 'V', last_name: 'V', role: 'viewer' })
    setPermissions(['contacts:read:all', 'deals:read:all', 'tasks:read:all'])
    for (const r of ['contacts', 'deals', 'tasks', 'companies']) expect(can(r, 'write')).toBe(false)
  })
})
