import { existsSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { chromium, type BrowserContext, type Page } from 'playwright-core'
import t from 'tap'
import { RECORD_HANDLER, readRecords, startChild, waitForOutput, type Child } from './helpers/processes.js'
import { freePort, startRedis } from './helpers/redis.js'
import { tempDir } from './helpers/temp.js'

/**
 * The dashboard in a real browser (Debian's Chromium, driven by
 * playwright-core) against the real API, two workers and redis-server:
 * one browser, one stack, the scenarios in order.
 */
const CHROMIUM = '/usr/bin/chromium'
const ARTIFACTS = fileURLToPath(new URL('../test-artifacts/dashboard/', import.meta.url))
const ADMIN = 'admin-browser-token'
const API = 'api-browser-token'

t.test('the dashboard in Chromium', { skip: existsSync(CHROMIUM) ? false : `${CHROMIUM} is missing: apt-get install -y chromium` }, async (t) => {
  const redis = await startRedis()
  t.teardown(redis.stop)
  const records = join(tempDir(t, 'dash-records'), 'records.jsonl')
  const env = {
    REDIS_URL: redis.url,
    KEY_PREFIX: `dash${process.pid}:`,
    KEY_SHARDS: '4',
    DASHBOARD: 'true',
    ADMIN_TOKENS: ADMIN,
    API_TOKENS: API,
    EVENT_STREAM: 'true',
    EXPIRY_HANDLERS: RECORD_HANDLER,
    RECORD_FILE: records,
    // dead-1 and dead-2 fail their first two attempts: dead after the second, handled when replayed.
    RECORD_FAIL_IDS: 'dead-1:2,dead-2:2',
    EXPIRY_MAX_ATTEMPTS: '2',
    EXPIRY_BACKOFF_MS: '100'
  }
  // Started together; on a busy machine compiling three processes at once takes a while.
  const port = await freePort()
  const api = { ...startChild('src/server.ts', { ...env, PORT: String(port), HOST: '127.0.0.1' }), base: `http://127.0.0.1:${port}` }
  const workers = [startChild('workers/expiry-worker.ts', env), startChild('workers/expiry-worker.ts', env)]
  t.teardown(async () => { await Promise.all([api, ...workers].map(async (c) => c.proc.exitCode === null && await c.signal('SIGKILL'))) })
  await Promise.all([waitForOutput(api, 'checkout API ready', 60_000), ...workers.map(async (w) => await waitForOutput(w, 'expiry worker ready', 60_000))])

  const profile = tempDir(t, 'chromium-profile')
  const context: BrowserContext = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--no-first-run'],
    viewport: { width: 1280, height: 900 }
  })
  t.teardown(async () => await context.close())
  const page: Page = context.pages()[0] ?? await context.newPage()
  const consoleErrors: string[] = []
  const outside: string[] = []
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()) })
  page.on('pageerror', (err) => consoleErrors.push(String(err)))
  page.on('request', (r) => { if (!r.url().startsWith(api.base) && !r.url().startsWith('data:')) outside.push(r.url()) })

  const hold = async (id: string, ttlMs: number) => {
    const res = await fetch(`${api.base}/checkout`, {
      method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${API}` }, body: JSON.stringify({ id, ttlMs })
    })
    if (res.status !== 201) throw new Error(`create ${id}: ${res.status} ${await res.text()}`)
  }
  const text = async (selector: string) => (await page.locator(selector).first().textContent())?.trim() ?? ''
  const until = async (what: string, check: () => Promise<boolean>, timeoutMs = 10_000) => {
    const deadline = Date.now() + timeoutMs
    while (!await check()) {
      if (Date.now() > deadline) throw new Error(`no ${what} within ${timeoutMs} ms`)
      await page.waitForTimeout(100)
    }
  }
  const total = async (chart: string) => Number(await page.locator(`#${chart}`).getAttribute('data-total'))

  const res = await page.goto(`${api.base}/dashboard`)
  t.match(res?.headers()['content-security-policy'], /default-src 'none'/, 'the page comes with a strict CSP')
  await page.locator('#token').fill(ADMIN)
  await page.locator('#token').press('Enter')
  await until('first refresh', async () => (await text('#status')).startsWith('updated'))
  t.equal(await text('#tile-pending .value'), '0', 'nothing is pending yet')
  t.equal(await total('chart-deadlines'), 0)

  // Holds: the pending tile and the deadline histogram follow.
  await hold('find-me-1', 300_000)
  for (let i = 0; i < 4; i++) await hold(`later-${i}`, 600_000 + i * 60_000)
  await until('pending tile at 5', async () => await text('#tile-pending .value') === '5')
  t.pass('the pending tile shows the new holds')
  await until('histogram with 5 holds', async () => await total('chart-deadlines') === 5)
  t.pass('the deadline histogram counts them')
  for (let i = 0; i < 6; i++) await hold(`soon-${i}`, 2000 + i * 100)
  await hold('dead-1', 2000)
  await hold('dead-2', 2000)

  // They expire: the expiries chart moves, the handled tile counts.
  await until('expiries in the chart', async () => await total('chart-runs') >= 6, 15_000)
  t.ok(Number(await text('#tile-handled .value')) >= 6, 'the handled tile counts the expiries')

  // dead-1 fails until dead: find its row, dry-run the replay, confirm, see it handled and audited.
  const deadRow = page.locator('#dead tr[data-order="dead-1"]')
  await deadRow.waitFor({ timeout: 15_000 })
  await page.locator('#dead tr[data-order="dead-2"]').waitFor({ timeout: 15_000 })
  t.equal(await text('#tile-dead .value'), '2', 'the dead-letter tile says two')
  await deadRow.getByRole('button', { name: 'replay dead-1' }).click()
  await until('the dry run', async () => await page.locator('#confirm').isVisible())
  t.match(await text('#confirm-text'), /Replay 1 dead letter/, 'the dry run says how many')
  await page.locator('#confirm-run').click()
  await until('the replay', async () => /Replayed 1 dead letter/.test(await text('#action-result')))
  await until('the audit entry', async () => /dead-letters\.replay · 1 letter/.test(await text('#audit li')))
  t.pass('the replay is in the audit list')
  await until('dead-1 handled', async () => readRecords(records).some((r) => r.id === 'dead-1' && r.ok), 10_000)
  await page.locator('#prefix').fill('dead-1')
  await page.locator('#prefix').press('Enter')
  await until('the timeline of dead-1', async () => /handler handled/.test(await text('#timeline-hold')))
  // The run itself reaches the timeline with the worker's next activity flush (about a second).
  await until('the handling run in the timeline', async () => {
    if (/attempt 3 by worker .* handled/.test(await text('#timeline-entries'))) return true
    await page.locator('#prefix').press('Enter')
    await page.waitForTimeout(400)
    return false
  })
  const timeline = await text('#timeline-entries')
  t.match(timeline, /dead: after 2 attempts/, 'the timeline shows the death')
  t.match(timeline, /attempt 3 by worker .* handled/, 'and the run that handled it')

  // The keyboard alone: Tab to the search, a prefix, Enter, Tab to a result, open its
  // timeline; Tab to dead-2's replay, dry run and confirm with Enter.
  const focused = async () => await page.evaluate('(document.activeElement?.id || document.activeElement?.getAttribute("aria-label") || document.activeElement?.textContent || "").trim()') as string
  const tabTo = async (name: string, maxTabs: number) => {
    for (let i = 0; i < maxTabs && await focused() !== name; i++) await page.keyboard.press('Tab')
    t.equal(await focused(), name, `Tab reaches ${name}`)
  }
  await page.locator('#sign-out').focus()
  await tabTo('prefix', 30)
  await page.keyboard.press('Control+A')
  await page.keyboard.type('find-me')
  await page.keyboard.press('Enter')
  await page.locator('#holds tr[data-order="find-me-1"]').waitFor()
  await tabTo('find-me-1', 5)
  t.ok(await page.evaluate('getComputedStyle(document.activeElement).outlineStyle !== "none"'), 'the focused result shows its focus')
  await page.keyboard.press('Enter')
  await until('the timeline of find-me-1', async () => await text('#timeline-title') === 'Timeline of find-me-1')
  t.equal(await focused(), 'timeline-title', 'focus moves to the timeline it opened')
  await tabTo('replay dead-2', 60)
  await page.keyboard.press('Enter')
  await until('the keyboard dry run', async () => await page.locator('#confirm').isVisible())
  t.match(await text('#confirm-text'), /Replay 1 dead letter\(s\) \(the dead letter of dead-2\)/, 'the dry run names dead-2')
  t.equal(await focused(), 'confirm-run', 'focus is on Confirm')
  await page.keyboard.press('Enter')
  await until('the keyboard replay', async () => /Replayed 1 dead letter/.test(await text('#action-result')))
  await until('dead-2 handled', async () => readRecords(records).some((r) => r.id === 'dead-2' && r.ok), 10_000)
  t.pass('a replay confirmed with the keyboard runs')

  // Search by prefix: a live countdown that goes down.
  await page.locator('#prefix').fill('find-me')
  await page.locator('#prefix').press('Enter')
  const countdown = page.locator('#holds tr[data-order="find-me-1"] .countdown')
  await countdown.waitFor()
  const seconds = (s: string) => { const m = /(?:(\d+)m )?(\d+)s$/.exec(s); return m ? Number(m[1] ?? 0) * 60 + Number(m[2]) : NaN }
  const first = seconds(await countdown.textContent() ?? '')
  await page.waitForTimeout(1600)
  const later = seconds(await countdown.textContent() ?? '')
  t.ok(later < first, `the countdown went down (${first} s, then ${later} s)`)

  mkdirSync(ARTIFACTS, { recursive: true })
  await page.screenshot({ path: join(ARTIFACTS, 'dashboard-1280.png'), fullPage: true })

  // A worker dies: the health panel says so.
  await (workers[0] as Child).signal('SIGKILL')
  await until('a lapsed worker', async () => await page.locator('#workers .state-lapsed').count() === 1, 10_000)
  // Its rule's for: is 2 min: pending until then.
  await until('the not-ready alert', async () => (await page.locator('[data-alert="CheckoutExpiryWorkerNotReady"]').getAttribute('class')) === 'pending')
  t.equal(await page.locator('#workers .state-alive').count(), 1, 'the other worker is still alive')

  await page.setViewportSize({ width: 390, height: 844 })
  await page.waitForTimeout(300)
  const overflow = await page.evaluate("document.documentElement.scrollWidth - document.documentElement.clientWidth") as number
  t.ok(overflow <= 0, `nothing is wider than 390 px (overflow ${overflow} px)`)
  await page.screenshot({ path: join(ARTIFACTS, 'dashboard-390.png'), fullPage: true })

  t.same(consoleErrors, [], 'no console error')
  t.same(outside, [], 'no request leaves the service')
})
