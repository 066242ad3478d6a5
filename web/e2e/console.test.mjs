// End-to-end tests of the console in headless Chromium (Debian's `chromium`, driven by
// playwright-core through its executable path: no browser is downloaded) against a real
// `crm serve` on a tenant subdomain (`http://<tenant>.localhost:<port>`).
//
//   CRM_URL=http://127.0.0.1:8000 PLATFORM_ADMIN_TOKEN=... node --test e2e/console.test.mjs
//
// scripts/web-check.sh starts that `crm serve` (own database, free ports via CRM_PORT_OFFSET)
// and runs this. Environment: CRM_URL (the combined port), PLATFORM_ADMIN_TOKEN (creates the
// tenant), CHROMIUM (default /usr/bin/chromium), E2E_REPORT (a JSON file the measurements are
// written to, for docs/PERFORMANCE.md), E2E_MAIL_DIR (the server's EMAIL_SINK_DIR: the password
// reset test reads its email there; skipped without it).
import { after, before, describe, test } from 'node:test'
import assert from 'node:assert/strict'
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { gzipSync } from 'node:zlib'
import { chromium } from 'playwright-core'

const CRM_URL = (process.env.CRM_URL ?? 'http://127.0.0.1:8000').replace(/\/$/, '')
const OPERATOR = process.env.PLATFORM_ADMIN_TOKEN ?? ''
const PORT = new URL(CRM_URL).port || '80'
const PASSWORD = 'correct horse battery'
const SUB = `e2e${Date.now().toString(36)}${Math.floor(Math.random() * 1e4)}`
const ORIGIN = `http://${SUB}.localhost:${PORT}`
const measurements = {}

/** The API as a script (set-up only; everything under test goes through the browser). */
async function call(method, path, token, body, headers = {}) {
  const r = await fetch(`${CRM_URL}/api/v1${path}`, {
    method,
    headers: { 'content-type': 'application/json', ...(token ? { authorization: `Bearer ${token}` } : {}), ...headers },
    body: body === undefined ? undefined : JSON.stringify(body),
  })
  const text = await r.text()
  const json = text ? JSON.parse(text) : null
  if (!r.ok) throw new Error(`${method} ${path}: ${r.status} ${text}`)
  return json
}

async function register(invitationToken, first, last) {
  return call('POST', '/auth/register', null, { invitation_token: invitationToken, password: PASSWORD, first_name: first, last_name: last })
}

/** A fresh browser with a fresh profile directory (this machine's network is closed). */
async function launch(viewport = { width: 1920, height: 1000 }) {
  const dir = mkdtempSync(join(tmpdir(), 'crm-e2e-profile-'))
  const context = await chromium.launchPersistentContext(dir, {
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    headless: true,
    viewport,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
      // Chromium resolves *.localhost to loopback itself; this keeps it so whatever the resolver.
      '--host-resolver-rules=MAP *.localhost 127.0.0.1',
    ],
  })
  const problems = []
  const watch = (page) => {
    page.on('pageerror', (e) => problems.push(`page error: ${e.message}`))
    page.on('console', (m) => {
      // The browser logs every non-2xx answer ("Failed to load resource: ... status of 400");
      // the tests cause those on purpose (a bad email, a stale token). Anything else counts.
      if (m.type() === 'error' && !/Failed to load resource: the server responded with a status of (400|401|404|422)/.test(m.text())) {
        const at = m.location()
        problems.push(`console error on ${page.url()}: ${m.text()} (${at.url}:${at.lineNumber})`)
      }
    })
  }
  context.pages().forEach(watch)
  context.on('page', watch)
  const page = context.pages()[0] ?? (await context.newPage())
  return {
    context,
    page,
    problems,
    async close() {
      await context.close()
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

async function login(page, email) {
  await page.goto(`${ORIGIN}/login`)
  await page.fill('input[name=email]', email)
  await page.fill('input[name=password]', PASSWORD)
  await page.click('button[type=submit]')
  await page.waitForURL(`${ORIGIN}/contacts`)
}

let tenant
let admin
let viewerEmail
let browser

before(async () => {
  assert.ok(OPERATOR, 'PLATFORM_ADMIN_TOKEN must be set (it creates the test tenant)')
  const created = await call('POST', '/tenants', OPERATOR, { name: 'Acme Browser Test', subdomain: SUB, admin_email: `admin@${SUB}.example` })
  tenant = created.tenant
  admin = await register(created.invitation.token, 'Ada', 'Admin')
  viewerEmail = `viewer@${SUB}.example`
  const invitation = await call('POST', `/tenants/${tenant.id}/invitations`, admin.access_token, { email: viewerEmail, role: 'viewer' })
  await register(invitation.token, 'Vic', 'Viewer')
  browser = await launch()
})

after(async () => {
  await browser?.close()
  if (process.env.E2E_REPORT) writeFileSync(process.env.E2E_REPORT, JSON.stringify(measurements, null, 2))
  if (tenant) await call('DELETE', `/tenants/${tenant.id}`, OPERATOR).catch(() => undefined)
})

describe('the console on a tenant subdomain', { concurrency: false }, () => {
  test('the login page names the tenant, and logging in lands on the contacts', async () => {
    const { page } = browser
    const loaded = new Set()
    const onResponse = (r) => {
      if (new URL(r.url()).pathname.endsWith('.js') && r.ok()) loaded.add(r.url())
    }
    page.on('response', onResponse)
    await page.goto(`${ORIGIN}/login`)
    await page.getByText('Acme Browser Test').waitFor()
    await login(page, `admin@${SUB}.example`)
    await page.getByRole('heading', { name: /Contacts/ }).waitFor()
    // Budget: the JavaScript of the first load (login page, then the contacts screen), gzipped.
    page.off('response', onResponse)
    const bodies = await Promise.all([...loaded].map(async (url) => Buffer.from(await (await fetch(url.replace(ORIGIN, CRM_URL))).arrayBuffer())))
    const gzipped = bodies.reduce((sum, b) => sum + gzipSync(b, { level: 9 }).length, 0)
    measurements.first_load_js_files = loaded.size
    measurements.first_load_js_gzip_bytes = gzipped
    assert.ok(gzipped < 200 * 1024, `first load: ${gzipped} bytes of gzipped JavaScript (budget 200 KB)`)
  })

  test('create a contact (per-field error first), then find it with a typo', async () => {
    const { page } = browser
    await call('POST', '/companies', admin.access_token, { name: 'Umbrella Browser Corp' })
    await page.goto(`${ORIGIN}/contacts`)
    await page.getByRole('button', { name: 'New contact' }).click()
    const dialog = page.getByRole('dialog', { name: 'New contact' })
    await dialog.locator('input[name=first_name]').fill('Griselda')
    await dialog.locator('input[name=last_name]').fill('Fairweather')
    await dialog.locator('input[name=email]').fill('not-an-email')
    await dialog.getByRole('button', { name: 'Create contact' }).click()
    const emailError = dialog.locator('[data-field-error=email]')
    await emailError.waitFor()
    assert.match(await emailError.textContent(), /email/i)
    await dialog.locator('input[name=email]').fill(`griselda@${SUB}.example`)
    // The company is picked from the company search as you type.
    await dialog.locator('input[name=company]').fill('Umbrella Browser')
    await dialog.locator('#company-options option[value="Umbrella Browser Corp"]').waitFor({ state: 'attached' })
    await dialog.locator('input[name=company]').fill('Umbrella Browser Corp')
    await dialog.getByRole('button', { name: 'Create contact' }).click()
    await page.waitForURL(/\/contacts\/\d+$/)
    await page.getByRole('heading', { name: /Griselda Fairweather/ }).waitFor()
    await page.getByRole('link', { name: 'Umbrella Browser Corp' }).waitFor()

    await page.goto(`${ORIGIN}/contacts`)
    await page.fill('input[name=search]', 'Grizelda Fairwether')
    await page.locator('[data-test=contact-row]', { hasText: 'Griselda Fairweather' }).waitFor()
  })

  test('notes and files on a contact page; the deleted contact comes back from the Trash', async () => {
    const { page } = browser
    const contact = await call('POST', '/contacts', admin.access_token, { first_name: 'Noemi', last_name: 'Notetaker', email: `noemi@${SUB}.example` })
    await page.goto(`${ORIGIN}/contacts/${contact.id}`)
    await page.getByRole('heading', { name: /Noemi Notetaker/ }).waitFor()
    await page.fill('textarea[name=note]', 'Called Noemi\nShe wants a demo')
    await page.getByRole('button', { name: 'Add note' }).click()
    await page.locator('[data-test=note]', { hasText: 'She wants a demo' }).waitFor()
    await page.setInputFiles('[data-test=attachments] input[type=file]', { name: 'brief.txt', mimeType: 'text/plain', buffer: Buffer.from('hello there') })
    await page.locator('[data-test=attachments]').getByRole('button', { name: 'Upload', exact: true }).click()
    const row = page.locator('[data-test=attachment]', { hasText: 'brief.txt' })
    await row.waitFor()
    assert.match(await row.textContent(), /11 B · text\/plain/)
    const [download] = await Promise.all([page.waitForEvent('download'), row.getByRole('link', { name: 'brief.txt' }).click()])
    assert.equal(download.suggestedFilename(), 'brief.txt')

    page.once('dialog', (d) => d.accept())
    await page.getByRole('button', { name: 'Delete', exact: true }).click()
    await page.waitForURL(`${ORIGIN}/contacts`)
    await page.getByRole('link', { name: 'Trash' }).click()
    await page.getByRole('heading', { level: 1, name: 'Trash' }).waitFor()
    const trashed = page.locator(`[data-test=trash-contact-${contact.id}]`)
    await trashed.getByRole('button', { name: 'Restore Noemi Notetaker' }).click()
    await trashed.waitFor({ state: 'detached' })
    await page.goto(`${ORIGIN}/contacts/${contact.id}`)
    await page.getByRole('heading', { name: /Noemi Notetaker/ }).waitFor()
    await page.locator('[data-test=note]', { hasText: 'She wants a demo' }).waitFor()
  })

  test('drag a deal to closed won: its activity and follow-up task appear', async () => {
    const { page } = browser
    const deal = await call('POST', '/deals', admin.access_token, { title: 'Globex rollout', value: 25000, currency: 'USD', stage: 'proposal' })
    await call('POST', '/deals', admin.access_token, { title: 'Initech licences', value: 9000, currency: 'EUR', stage: 'proposal' })
    await page.goto(`${ORIGIN}/deals`)
    const card = page.locator(`[data-deal-id="${deal.id}"]`)
    await card.waitFor()
    // Per-currency totals of the proposal column: never added together.
    const totals = await page.locator('[data-stage=proposal] [data-test=stage-totals]').textContent()
    assert.match(totals, /25,000/)
    assert.match(totals, /9,000/)
    await card.dragTo(page.locator('[data-stage=closed_won]'))
    await page.locator(`[data-stage=closed_won] [data-deal-id="${deal.id}"]`).waitFor()
    const dialog = page.getByRole('dialog')
    await dialog.locator('[data-test=deal-activities]', { hasText: 'Deal closed won: Globex rollout' }).waitFor({ timeout: 15000 })
    await dialog.locator('[data-test=deal-tasks]', { hasText: 'Globex rollout' }).waitFor({ timeout: 15000 })
    await page.keyboard.press('Escape')
    const stored = await call('GET', `/deals/${deal.id}`, admin.access_token)
    assert.equal(stored.stage, 'closed_won')
    // And the follow-up is in my tasks.
    await page.goto(`${ORIGIN}/tasks`)
    await page.locator('[data-test=task]', { hasText: 'Globex rollout' }).waitFor()
  })

  test('the board works from the keyboard; a deal is edited with per-field errors', async () => {
    const { page } = browser
    const deal = await call('POST', '/deals', admin.access_token, { title: 'Keyboard deal', value: 100, currency: 'USD', stage: 'lead' })
    await page.goto(`${ORIGIN}/deals`)
    const card = page.locator(`[data-deal-id="${deal.id}"]`)
    await card.focus()
    await page.keyboard.press('ArrowRight')
    await page.locator(`[data-stage=qualified] [data-deal-id="${deal.id}"]`).waitFor()
    for (let i = 0; i < 50; i++) {
      if ((await call('GET', `/deals/${deal.id}`, admin.access_token)).stage === 'qualified') break
      await new Promise((r) => setTimeout(r, 100))
    }
    assert.equal((await call('GET', `/deals/${deal.id}`, admin.access_token)).stage, 'qualified')
    // Enter opens it; an amount finer than the currency's minor unit is refused beside the field.
    await page.locator(`[data-deal-id="${deal.id}"]`).focus()
    await page.keyboard.press('Enter')
    const dialog = page.getByRole('dialog')
    await dialog.getByRole('button', { name: 'Edit deal' }).click()
    await dialog.locator('input[name=value]').fill('12.345')
    await dialog.getByRole('button', { name: 'Save deal' }).click()
    await dialog.locator('[data-field-error=value]').waitFor()
    await dialog.locator('input[name=value]').fill('150')
    await dialog.getByRole('button', { name: 'Save deal' }).click()
    await dialog.getByRole('button', { name: 'Edit deal' }).waitFor()
    assert.equal((await call('GET', `/deals/${deal.id}`, admin.access_token)).value, 150)
    await page.keyboard.press('Escape')
    await page.locator('[data-stage=qualified] [data-test=stage-totals]', { hasText: '$150.00' }).waitFor()
    // A new deal from the board, its primary contact picked from the contact search.
    await page.getByRole('button', { name: 'New deal' }).click()
    const form = page.getByRole('dialog', { name: 'New deal' })
    await form.locator('input[name=title]').fill('Board-made deal')
    await form.locator('input[name=value]').fill('700')
    await form.locator('input[name=contact]').fill('Griselda')
    const option = form.locator('#deal-contact-options option').first()
    await option.waitFor({ state: 'attached' })
    await form.locator('input[name=contact]').fill(await option.getAttribute('value'))
    await form.getByRole('button', { name: 'Create deal' }).click()
    await page.locator('.card', { hasText: 'Board-made deal' }).waitFor()
    const made = (await call('GET', '/deals?search=Board-made', admin.access_token)).data[0]
    assert.equal(made.primary_contact_name, 'Griselda Fairweather')
  })

  test('import a CSV with one bad row: that row is reported', async () => {
    const { page } = browser
    await page.goto(`${ORIGIN}/contacts/import`)
    const csv = `first_name,last_name,email\nImre,Good,imre@${SUB}.example\nBad,Row,not-an-email\nJuno,Good,juno@${SUB}.example\n`
    await page.setInputFiles('input[type=file]', { name: 'contacts.csv', mimeType: 'text/csv', buffer: Buffer.from(csv) })
    await page.getByRole('button', { name: 'Import' }).click()
    const report = page.locator('[data-test=import-report]')
    await report.waitFor()
    assert.match(await report.textContent(), /2 created/)
    const errors = page.locator('[data-test=import-error]')
    assert.equal(await errors.count(), 1)
    const cells = await errors.first().locator('td').allTextContents()
    assert.equal(cells[0], '3')
    assert.equal(cells[1], 'email')
    // And out again: the export downloads every contact in the import's columns.
    await page.goto(`${ORIGIN}/contacts`)
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Export CSV' }).click()])
    const csvOut = readFileSync(await download.path(), 'utf8')
    assert.match(csvOut.split('\n')[0], /first_name/)
    assert.match(csvOut, new RegExp(`juno@${SUB}.example`))
  })

  test('50 contacts render within 100 ms of their data arriving; scrolling loads more', async () => {
    const { page } = browser
    const requests = []
    for (let i = 0; i < 50; i++) {
      requests.push(call('POST', '/contacts', admin.access_token, { first_name: `Bulk${i}`, last_name: 'Perf', email: `bulk${i}@${SUB}.example`, tags: ['perf'] }))
    }
    await Promise.all(requests)
    const durations = []
    for (let run = 0; run < 5; run++) {
      await page.goto(`${ORIGIN}/contacts?tag=perf`)
      await page.waitForFunction(() => document.querySelectorAll('[data-test=contact-row]').length >= 50 && performance.getEntriesByName('contacts:render').length > 0)
      const rows = await page.locator('[data-test=contact-row]').count()
      assert.ok(rows >= 50, `${rows} rows`)
      const entries = await page.evaluate(() => performance.getEntriesByName('contacts:render').map((e) => e.duration))
      durations.push(Math.max(...entries))
    }
    measurements.contacts_50_render_ms = durations.map((d) => Math.round(d * 10) / 10)
    // The median of 5 loads: on a shared 2-core machine one load can stall behind another
    // process; every value is reported (docs/PERFORMANCE.md).
    const median = [...durations].sort((a, b) => a - b)[2]
    measurements.contacts_50_render_median_ms = Math.round(median * 10) / 10
    // The endless list: scrolling to the end loads the next page on the API's cursor.
    await page.goto(`${ORIGIN}/contacts`)
    await page.waitForFunction(() => document.querySelectorAll('[data-test=contact-row]').length === 50)
    await page.locator('[data-test=contact-row]').last().scrollIntoViewIfNeeded()
    await page.waitForFunction(() => document.querySelectorAll('[data-test=contact-row]').length > 50)
    assert.ok(median < 100, `rendering 50 contacts took ${durations.join(', ')} ms, median ${median} (budget 100 ms)`)
  })

  test('readable on a phone: no sideways scrolling, the menu opens', async () => {
    const phone = await launch({ width: 375, height: 740 })
    try {
      await login(phone.page, `admin@${SUB}.example`)
      await phone.page.locator('[data-test=contact-row]').first().waitFor()
      const overflow = await phone.page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth)
      assert.ok(overflow <= 0, `the contacts page is ${overflow}px wider than the phone`)
      await phone.page.getByRole('button', { name: 'Menu' }).click()
      await phone.page.getByRole('link', { name: 'Deals' }).click()
      await phone.page.getByRole('heading', { name: 'Pipeline' }).waitFor()
      assert.deepEqual(phone.problems, [])
    } finally {
      await phone.close()
    }
  })

  test('a viewer cannot edit', async () => {
    const viewer = await launch()
    try {
      const { page } = viewer
      await login(page, viewerEmail)
      await page.locator('[data-test=contact-row]').first().waitFor()
      assert.equal(await page.getByRole('button', { name: 'New contact' }).count(), 0)
      assert.equal(await page.getByRole('link', { name: 'Import contacts' }).count(), 0)
      await page.locator('[data-test=contact-row] a').first().click()
      await page.waitForURL(/\/contacts\/\d+$/)
      await page.getByRole('heading', { level: 1 }).waitFor()
      assert.equal(await page.getByRole('button', { name: 'Edit' }).count(), 0)
      assert.equal(await page.getByRole('button', { name: 'Delete' }).count(), 0)
      assert.equal(await page.getByRole('button', { name: 'Add note' }).count(), 0)
      await page.goto(`${ORIGIN}/deals`)
      const card = page.locator('.card').first()
      await card.waitFor()
      assert.equal(await card.getAttribute('draggable'), 'false')
      assert.equal(await page.locator('.card select').count(), 0)
      assert.equal(await page.getByRole('button', { name: 'New deal' }).count(), 0)
      assert.deepEqual(viewer.problems, [])
    } finally {
      await viewer.close()
    }
  })

  test('an email template: the preview follows the typing, then a contact gets it', async () => {
    const { page } = browser
    await page.goto(`${ORIGIN}/templates`)
    await page.getByRole('button', { name: 'New template' }).click()
    await page.fill('input[name=name]', 'Welcome')
    await page.fill('input[name=subject]', 'Welcome aboard, {{contact.first_name}}')
    await page.locator('[data-test=live-preview]', { hasText: 'Welcome aboard, Jane' }).waitFor()
    await page.getByRole('button', { name: 'Save' }).click()
    await page.getByRole('cell', { name: 'Welcome', exact: true }).waitFor()
    // On a contact's page: pick the template, see it rendered for that contact, send it.
    const contact = await call('POST', '/contacts', admin.access_token, { first_name: 'Mirela', last_name: 'Postbox', email: `mirela@${SUB}.example` })
    await page.goto(`${ORIGIN}/contacts/${contact.id}`)
    await page.selectOption('select[name=template]', { label: 'Welcome' })
    await page.locator('[data-test=email-preview]', { hasText: 'Welcome aboard, Mirela' }).waitFor()
    await page.getByRole('button', { name: /^Send to/ }).click()
    await page.locator('[data-test=timeline-item]', { hasText: 'Welcome aboard, Mirela' }).waitFor()
  })

  test('every screen opens', async () => {
    const { page } = browser
    const screens = [
      ['/companies', 'Companies'], ['/deals/forecast', 'Forecast'], ['/tasks', 'My tasks'], ['/templates', 'Email templates'],
      ['/contacts/import', 'Import contacts'], ['/admin', 'Admin'], ['/automation', 'Automation'], ['/sequences', 'Sequences'], ['/history', 'History'], ['/webhooks', 'Webhooks'], ['/trash', 'Trash'],
      ['/no/such/page', 'Page not found'],
    ]
    for (const [path, heading] of screens) {
      await page.goto(`${ORIGIN}${path}`)
      await page.getByRole('heading', { level: 1, name: heading }).waitFor()
      await page.waitForLoadState('networkidle')
    }
    // Admin lists the tenant's users.
    await page.goto(`${ORIGIN}/admin`)
    await page.getByRole('table', { name: 'Users' }).getByRole('cell', { name: viewerEmail }).waitFor()
  })

  test('invite a sales rep from Admin; they register with the link and sign in', async () => {
    const { page } = browser
    await page.goto(`${ORIGIN}/admin`)
    await page.fill('input[name=invite_email]', `rep@${SUB}.example`)
    await page.selectOption('select[name=invite_role]', 'sales_rep')
    await page.getByRole('button', { name: 'Invite' }).click()
    const link = await page.locator('a[href*="/register?invitation="]').getAttribute('href')
    assert.ok(link?.startsWith(`${ORIGIN}/register?invitation=`), link)
    const rep = await launch()
    try {
      await rep.page.goto(link)
      await rep.page.getByText(`rep@${SUB}.example`).waitFor()
      await rep.page.fill('input[name=first_name]', 'Sam')
      await rep.page.fill('input[name=last_name]', 'Seller')
      await rep.page.fill('input[name=password]', 'short')
      await rep.page.getByRole('button', { name: 'Create my account' }).click()
      await rep.page.locator('.field-error').first().waitFor()
      await rep.page.fill('input[name=password]', PASSWORD)
      await rep.page.getByRole('button', { name: 'Create my account' }).click()
      await rep.page.waitForURL(`${ORIGIN}/contacts`)
      await rep.page.locator('[data-test=who]', { hasText: 'Sam Seller · sales_rep' }).waitFor()
      // A sales rep may create contacts but not manage stages or users.
      await rep.page.getByRole('button', { name: 'New contact' }).waitFor()
      assert.equal(await rep.page.getByRole('link', { name: 'Admin' }).count(), 0)
      assert.deepEqual(rep.problems, [])
    } finally {
      await rep.close()
    }
  })

  test('forgot password: the emailed link sets a new password', { skip: !process.env.E2E_MAIL_DIR && 'E2E_MAIL_DIR (the EMAIL_SINK_DIR of the server) is not set' }, async () => {
    const email = `rep@${SUB}.example`
    const other = await launch()
    try {
      const { page } = other
      await page.goto(`${ORIGIN}/login`)
      await page.getByRole('link', { name: 'Forgot your password?' }).click()
      await page.getByRole('heading', { name: 'Reset your password' }).waitFor()
      await page.fill('input[name=email]', email)
      await page.getByRole('button', { name: 'Send the link' }).click()
      await page.getByText(`If ${email} has an account`).waitFor()
      // The reset email (quoted-printable .eml in the server's sink directory).
      const decode = (t) => t.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/g, (_, h) => String.fromCharCode(parseInt(h, 16)))
      let token
      for (let i = 0; i < 100 && !token; i++) {
        for (const f of readdirSync(process.env.E2E_MAIL_DIR)) {
          const text = decode(readFileSync(join(process.env.E2E_MAIL_DIR, f), 'utf8'))
          const m = text.includes(email) && text.match(/reset-password\?token=([A-Za-z0-9_\-%.~]+)/)
          if (m) token = m[1]
        }
        if (!token) await new Promise((r) => setTimeout(r, 100))
      }
      assert.ok(token, 'no reset email arrived')
      await page.goto(`${ORIGIN}/reset-password?token=${token}`)
      await page.fill('input[name=new_password]', 'a brand new passphrase')
      await page.getByRole('button', { name: 'Save' }).click()
      await page.getByText('Your password is changed').waitFor()
      await page.getByRole('link', { name: 'Sign in' }).click()
      await page.getByRole('button', { name: 'Sign in' }).waitFor()
      await page.fill('input[name=email]', email)
      await page.fill('input[name=password]', 'a brand new passphrase')
      await page.click('button[type=submit]')
      await page.waitForURL(`${ORIGIN}/contacts`)
      assert.deepEqual(other.problems, [])
    } finally {
      await other.close()
    }
  })

  test('a 401 clears the session and returns to the login page', async () => {
    const { page } = browser
    await page.goto(`${ORIGIN}/contacts`)
    await page.evaluate(() => {
      const s = JSON.parse(localStorage.getItem('crm.session'))
      s.token = 'not-a-valid-token'
      localStorage.setItem('crm.session', JSON.stringify(s))
    })
    await page.goto(`${ORIGIN}/contacts`)
    await page.waitForURL(/\/login\?expired=1$/)
    assert.equal(await page.evaluate(() => localStorage.getItem('crm.session')), null)
  })

  test('no console errors along the way', () => {
    assert.deepEqual(browser.problems, [])
  })
})

/** The whole built bundle, gzipped (reported beside the first load). */
test('the built JavaScript, gzipped, is within the budget', () => {
  const assets = new URL('../dist/assets/', import.meta.url)
  const files = readdirSync(assets).filter((f) => f.endsWith('.js'))
  const total = files.reduce((sum, f) => sum + gzipSync(readFileSync(new URL(f, assets)), { level: 9 }).length, 0)
  measurements.all_js_gzip_bytes = total
  assert.ok(total < 200 * 1024, `${total} bytes`)
})
