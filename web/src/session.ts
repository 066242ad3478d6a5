// The signed-in session: the access token (sent on every call by api/client.ts), the user and
// what the role may do (`GET /auth/me` permissions, "resource:action:scope"). Kept in
// localStorage, which is per origin, so each tenant subdomain has its own session.
import { reactive, readonly } from 'vue'

export interface SessionUser {
  id: number
  email: string
  first_name: string
  last_name: string
  role: string
}

interface State {
  /** The tenant signed in to (from `GET /tenants/by-subdomain/{subdomain}`). */
  tenantId: string | null
  tenantName: string | null
  token: string | null
  refreshToken: string | null
  user: SessionUser | null
  permissions: string[]
}

const KEY = 'crm.session'

function load(): State {
  try {
    const raw = localStorage.getItem(KEY)
    if (raw) return { permissions: [], ...JSON.parse(raw) } as State
  } catch {
    // A damaged entry is a signed-out session.
  }
  return { tenantId: null, tenantName: null, token: null, refreshToken: null, user: null, permissions: [] }
}

const state = reactive<State>(load())

function save() {
  localStorage.setItem(KEY, JSON.stringify(state))
}

export const session = readonly(state)

/** Stores a login/registration answer. */
export function signIn(tenant: { id: string; name: string } | null, token: string, refreshToken: string | null, user: SessionUser) {
  state.tenantId = tenant?.id ?? null
  state.tenantName = tenant?.name ?? null
  state.token = token
  state.refreshToken = refreshToken
  state.user = user
  save()
}

/** Stores the permissions of `GET /auth/me`. */
export function setPermissions(permissions: string[]) {
  state.permissions = permissions
  save()
}

/** Forgets everything (logout, or a 401 from any call). */
export function signOut() {
  state.tenantId = null
  state.tenantName = null
  state.token = null
  state.refreshToken = null
  state.user = null
  state.permissions = []
  localStorage.removeItem(KEY)
}

/**
 * Whether the role may do `action` on `resource` at all (scope `all` or `own`). Pass the
 * record's owner to check an `own` scope against the signed-in user.
 */
export function can(resource: string, action: 'read' | 'write' | 'delete', ownerId?: number | null): boolean {
  for (const p of state.permissions) {
    const [r, a, scope] = p.split(':')
    if (r !== resource || a !== action) continue
    if (scope === 'all') return true
    if (scope === 'own') return ownerId === undefined || ownerId === state.user?.id
  }
  return false
}

/**
 * The tenant's subdomain from the page's host (`acme.localhost` -> `acme`,
 * `acme.crm.example.com` -> `acme`); `null` on a bare host or an IP address, where the login
 * page asks for it.
 */
export function tenantFromHost(hostname: string = location.hostname): string | null {
  if (/^[\d.]+$/.test(hostname) || hostname.includes(':')) return null
  const labels = hostname.split('.')
  return labels.length >= 2 ? labels[0] : null
}
