import { describe, expect, it } from 'vitest'
import PipelineView from '../src/views/PipelineView.vue'
import { setPermissions, signIn } from '../src/session'
import { toast } from '../src/toast'
import { json, respond } from './setup'
import { mountWithRouter, settle } from './mount'

const deal = (id: number, stage: string, value: number, currency = 'USD') => ({ id, title: `Deal ${id}`, stage, value, currency, owner_id: 1, probability: 50 })
const stage = (key: string, kind: string, deals: ReturnType<typeof deal>[]) => {
  const totals: Record<string, number> = {}
  for (const d of deals) totals[d.currency] = (totals[d.currency] ?? 0) + d.value
  return { stage: key, name: key, kind, position: 0, probability: 50, deal_count: deals.length, total_value: null, weighted_value: null, total_value_by_currency: totals, weighted_value_by_currency: {}, deals }
}
const pipeline = () => ({
  stages: [stage('lead', 'open', [deal(1, 'lead', 100), deal(2, 'lead', 50, 'EUR')]), stage('closed_won', 'won', [])],
  totals: { total_deals: 2, total_value: null, total_weighted_value: null, total_value_by_currency: { EUR: 50, USD: 100 }, total_weighted_value_by_currency: {} },
})

function signedIn(permissions: string[]) {
  signIn(null, 't', null, { id: 1, email: 'a@x', first_name: 'A', last_name: 'B', role: 'admin' })
  setPermissions(permissions)
}

describe('PipelineView', () => {
  it('shows per-currency totals per column, never added across currencies', async () => {
    signedIn(['deals:read:all', 'deals:write:all'])
    respond((req) => (new URL(req.url).pathname === '/api/v1/deals/pipeline' ? json(pipeline()) : undefined))
    const { wrapper } = await mountWithRouter(PipelineView)
    await settle()
    const totals = wrapper.findAll('[data-test=stage-totals]').map((t) => t.text())
    expect(totals[0]).toContain('€50.00')
    expect(totals[0]).toContain('$100.00')
    expect(totals[1]).toBe('—')
  })

  it('moves a card at once and rolls it back when the API refuses', async () => {
    signedIn(['deals:read:all', 'deals:write:all'])
    let release!: () => void
    const gate = new Promise<void>((r) => (release = r))
    respond(async (req) => {
      const path = new URL(req.url).pathname
      if (path === '/api/v1/deals/pipeline') return json(pipeline())
      if (path === '/api/v1/deals/1' && req.method === 'PATCH') {
        await gate
        return json({ error: 'unknown stage', code: 'UNKNOWN_STAGE', details: null, request_id: 'r' }, 422)
      }
    })
    const { wrapper } = await mountWithRouter(PipelineView)
    await settle()
    const card = wrapper.get('[data-deal-id="1"]')
    await card.trigger('keydown', { key: 'ArrowRight' })
    await settle()
    // Optimistic: already in the won column, totals adjusted.
    expect(wrapper.get('[data-stage=closed_won]').find('[data-deal-id="1"]').exists()).toBe(true)
    expect(wrapper.get('[data-stage=closed_won] [data-test=stage-totals]').text()).toContain('$100.00')
    release()
    await settle(10)
    // Refused: back where it was, with the reason.
    expect(wrapper.get('[data-stage=lead]').find('[data-deal-id="1"]').exists()).toBe(true)
    expect(wrapper.get('[data-stage=closed_won]').find('[data-deal-id="1"]').exists()).toBe(false)
    expect(toast.error).toBe(true)
    expect(toast.text).toContain('unknown stage')
    wrapper.unmount()
  })

  it('a viewer gets no drag and no move controls', async () => {
    signedIn(['deals:read:all'])
    respond((req) => (new URL(req.url).pathname === '/api/v1/deals/pipeline' ? json(pipeline()) : undefined))
    const { wrapper } = await mountWithRouter(PipelineView)
    await settle()
    const card = wrapper.get('[data-deal-id="1"]')
    expect(card.attributes('draggable')).toBe('false')
    expect(card.find('select').exists()).toBe(false)
    expect(wrapper.text()).not.toContain('New deal')
    wrapper.unmount()
  })
})
