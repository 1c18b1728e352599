// The operator dashboard: reads the /admin API of the same origin with the
// admin token kept in sessionStorage, refreshes itself, and draws with uPlot
// (loaded before this file). No framework; every value goes in as text.
/* global uPlot */
const TOKEN_KEY = 'checkout-expiry-admin-token'
const REFRESH_MS = 2000
const $ = (id) => document.getElementById(id)
/** Counts are whole: no 0.25 ticks. */
const COUNT_STEPS = [1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000, 20_000, 50_000, 100_000, 1_000_000]

let token = sessionStorage.getItem(TOKEN_KEY)
/** Redis server time minus this browser's clock (ms), from the last summary. */
let clockOffset = 0
const serverNow = () => Date.now() + clockOffset
let timer
const charts = {}
let holdsCursor = null
let holdsPrefix = ''
let pending = null

class Unauthorized extends Error {}

async function api (path, body) {
  const res = await fetch(path, {
    method: body === undefined ? 'GET' : 'POST',
    headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
    body: body === undefined ? undefined : JSON.stringify(body),
    cache: 'no-store'
  })
  if (res.status === 401) throw new Unauthorized('the token was refused')
  const data = await res.json()
  if (!res.ok) throw new Error(data.message ?? `HTTP ${res.status}`)
  return data
}

function el (tag, text, attrs = {}) {
  const node = document.createElement(tag)
  if (text !== undefined && text !== null) node.textContent = String(text)
  for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, v)
  return node
}

const fmtMs = (ms) => ms === null || ms === undefined ? '–' : ms < 1000 ? `${Math.round(ms)} ms` : `${(ms / 1000).toFixed(ms < 10_000 ? 1 : 0)} s`
const fmtLeft = (ms) => {
  if (ms <= 0) return 'due'
  const s = Math.floor(ms / 1000)
  const h = Math.floor(s / 3600)
  const m = Math.floor((s % 3600) / 60)
  return h > 0 ? `${h}h ${m}m ${s % 60}s` : m > 0 ? `${m}m ${s % 60}s` : `${s}s`
}
const time = (ms) => new Date(ms).toLocaleTimeString()

function setTile (id, value, bad = false) {
  const tile = $(`tile-${id}`)
  tile.querySelector('.value').textContent = String(value)
  tile.classList.toggle('bad', bad)
}

function chartSize (node) {
  return { width: Math.max(280, node.clientWidth), height: 200 }
}

/** Creates the chart once, then only feeds it data. */
function draw (id, opts, data) {
  const node = $(id)
  if (!charts[id]) {
    charts[id] = new uPlot({ ...chartSize(node), ...opts }, data, node)
  } else {
    charts[id].setData(data)
  }
}

function renderSummary (s) {
  clockOffset = s.now - Date.now()
  setTile('pending', s.pending)
  setTile('next1m', s.expiring.next1m)
  setTile('next5m', s.expiring.next5m)
  setTile('next60m', s.expiring.next60m)
  setTile('overdue', s.overdue, s.overdue > 0)
  setTile('handled', s.lastHour.handled)
  setTile('retrying', s.jobs.retrying)
  setTile('dead', s.deadLetters, s.deadLetters > 0)
  setTile('p50', fmtMs(s.lastHour.latenessP50Ms))
  setTile('p99', fmtMs(s.lastHour.latenessP99Ms), (s.lastHour.latenessP99Ms ?? 0) > s.latenessTargetMs)
  const xs = s.minutes.map((m) => m.at / 1000)
  // What each chart shows in total, on its node: for a test or a quick look in the inspector.
  $('chart-runs').dataset.total = String(s.minutes.reduce((a, m) => a + m.sweep + m.event + m.retry, 0))
  draw('chart-runs', {
    series: [{}, { label: 'sweep', stroke: '#0969da', width: 2 }, { label: 'event', stroke: '#bf8700', width: 2 }, { label: 'retry', stroke: '#cf222e', width: 2 }],
    axes: [{}, { size: 56, incrs: COUNT_STEPS }]
  }, [xs, s.minutes.map((m) => m.sweep), s.minutes.map((m) => m.event), s.minutes.map((m) => m.retry)])
  draw('chart-lateness', {
    scales: { y: { distr: 3 } },
    // Points too: a minute with expiries between quiet ones has no neighbour to draw a line to.
    series: [{}, { label: 'p50', stroke: '#0969da', width: 2, points: { show: true, size: 6 } },
      { label: 'p99', stroke: '#8250df', width: 2, points: { show: true, size: 6 } }, { label: 'alert', stroke: '#cf222e', dash: [6, 4], points: { show: false } }],
    axes: [{}, { size: 56 }]
  }, [xs, s.minutes.map((m) => m.latenessP50Ms), s.minutes.map((m) => m.latenessP99Ms), s.minutes.map(() => s.latenessTargetMs)])
}

function renderDeadlines (h) {
  const xs = h.counts.map((_c, i) => (h.from + i * h.bucketMs) / 1000)
  $('chart-deadlines').dataset.total = String(h.counts.reduce((a, b) => a + b, 0))
  draw('chart-deadlines', {
    series: [{}, { label: 'holds', stroke: '#1a7f37', fill: 'rgba(26,127,55,0.35)', paths: uPlot.paths.bars({ size: [0.8, 40] }), points: { show: false } }],
    axes: [{}, { size: 56, incrs: COUNT_STEPS }]
  }, [xs, h.counts])
}

function renderHealth (h) {
  const alerts = $('alerts')
  alerts.replaceChildren(...h.alerts.map((a) => {
    const label = a.state === 'firing' ? 'FIRING' : a.state === 'pending' ? `pending (fires after ${a.forMs / 60_000} min)` : 'ok'
    const li = el('li', `${label}: ${a.name}`, { class: a.state === 'inactive' ? 'ok' : a.state, title: a.summary, 'data-alert': a.name })
    return li
  }))
  $('settings').textContent = `keyspace events: ${h.keyspaceEvents ?? 'unknown'} · eviction policy: ${h.evictionPolicy ?? 'unknown'} · sweep lag: ${fmtMs(h.sweepLagMs)}`
  $('masters').replaceChildren(...h.masters.map((m) => el('li', `${m.subscribed ? 'ok' : 'NO SUBSCRIBER'}: master ${m.master}, ${m.workers} worker(s) subscribed`,
    { class: m.subscribed ? 'ok' : 'firing', 'data-master': m.master })))
  $('workers').tBodies[0].replaceChildren(...(h.workers.length === 0 ? [emptyRow(6, 'No worker has reported in the last hour.')] : []), ...h.workers.map((w) => {
    const tr = el('tr', null, { 'data-worker': w.token })
    const state = !w.alive ? 'lapsed (no report)' : w.ready ? 'alive, ready' : 'alive, not ready'
    tr.append(el('td', w.token), el('td', `${w.host} / ${w.pid}`), el('td', `${fmtMs(w.ageMs)} ago`),
      el('td', state, { class: w.alive ? 'state-alive' : 'state-lapsed' }), el('td', w.subscriber ? 'yes' : 'no'), el('td', `${w.running} / ${w.concurrency}`))
    return tr
  }))
}

const selected = new Map()
function renderDead (page) {
  const rows = page.items.map((d) => {
    const key = `${d.shard}|${d.member}`
    const tr = el('tr', null, { 'data-order': d.id })
    const box = el('input', null, { type: 'checkbox', 'aria-label': `select ${d.id}` })
    box.checked = selected.has(key)
    box.addEventListener('change', () => { if (box.checked) selected.set(key, { shard: d.shard, member: d.member }); else selected.delete(key) })
    const replay = el('button', 'Replay', { type: 'button', 'aria-label': `replay ${d.id}` })
    replay.addEventListener('click', () => { void dryRun('replay', { letters: [{ shard: d.shard, member: d.member }] }, `the dead letter of ${d.id}`) })
    tr.append(el('td').appendChild(box).parentNode, el('td', d.id), el('td', time(d.diedAt)), el('td', d.attempts), el('td', d.lastError, { class: 'error' }), el('td').appendChild(replay).parentNode)
    return tr
  })
  // The table is rebuilt at every refresh: a keyboard user keeps the control they were on.
  const focused = $('dead').contains(document.activeElement) ? document.activeElement.getAttribute('aria-label') : null
  $('dead').tBodies[0].replaceChildren(...(rows.length > 0 ? rows : [emptyRow(6, 'No dead letters.')]))
  if (focused) ($('dead').querySelector(`[aria-label="${CSS.escape(focused)}"]`) ?? $('action-result')).focus()
}

function emptyRow (columns, message) {
  const tr = el('tr')
  tr.append(el('td', message, { colspan: String(columns) }))
  return tr
}

function renderAudit (a) {
  $('audit').replaceChildren(...a.items.map((e) => el('li', `${time(e.at)} · ${e.who} · ${e.action} · ${e.count} letter(s)`)))
}

async function dryRun (action, selection, what) {
  try {
    const answer = await api(`/admin/dead-letters/${action}`, { ...selection, dryRun: true })
    pending = { action, selection, count: answer.count, upTo: answer.upTo, opener: document.activeElement }
    $('confirm-text').textContent = `${action === 'replay' ? 'Replay' : 'Purge for good'} ${answer.count} dead letter(s) (${what})?`
    $('confirm').hidden = false
    $('confirm-run').disabled = answer.count === 0
    $('confirm-run').focus()
  } catch (err) {
    report(err)
  }
}

async function confirmRun () {
  if (!pending) return
  const { action, selection, count, upTo } = pending
  closeConfirm()
  try {
    const done = await api(`/admin/dead-letters/${action}`, { ...selection, dryRun: false, confirmCount: count, ...(upTo === null ? {} : { upTo }) })
    $('action-result').textContent = `${action === 'replay' ? 'Replayed' : 'Purged'} ${done.count} dead letter(s).`
    selected.clear()
    await refresh()
  } catch (err) {
    $('action-result').textContent = err.message
  }
}

/** Hides the confirmation; focus goes back where the action started, or to its result when that control is gone. */
function closeConfirm () {
  const opener = pending?.opener
  pending = null
  $('confirm').hidden = true
  if (opener?.isConnected && opener !== document.body) opener.focus()
  else $('action-result').focus()
}

function renderHolds (page, append) {
  const rows = page.items.map((h) => {
    const tr = el('tr', null, { 'data-order': h.id })
    const open = el('button', h.id, { type: 'button', class: 'link' })
    open.addEventListener('click', () => { void showTimeline(h.id) })
    tr.append(el('td').appendChild(open).parentNode, el('td', new Date(h.expiresAt).toLocaleTimeString()),
      el('td', fmtLeft(h.expiresAt - serverNow()), { class: 'countdown', 'data-expires-at': String(h.expiresAt) }))
    return tr
  })
  if (append) $('holds').tBodies[0].append(...rows)
  else $('holds').tBodies[0].replaceChildren(...(rows.length > 0 ? rows : [emptyRow(3, page.next === null ? 'No pending hold matches.' : 'None in the holds looked at so far: see the next page.')]))
  holdsCursor = page.next
  $('holds-more').hidden = page.next === null
}

async function searchHolds (append = false) {
  const q = new URLSearchParams({ limit: '25' })
  if (holdsPrefix) q.set('prefix', holdsPrefix)
  if (append && holdsCursor) q.set('cursor', holdsCursor)
  renderHolds(await api(`/admin/holds?${q}`), append)
  // A whole id also opens its timeline, whether the hold is pending or has ended.
  if (!append && /^[A-Za-z0-9._:-]+$/.test(holdsPrefix)) await showTimeline(holdsPrefix, true)
}

async function showTimeline (id, onlyIfKnown = false) {
  const t = await api(`/admin/holds/${encodeURIComponent(id)}/timeline`)
  if (onlyIfKnown && !t.hold) return
  $('timeline').hidden = false
  // Opened from a result: the keyboard goes on from the timeline.
  if (!onlyIfKnown) $('timeline-title').focus()
  $('timeline-title').textContent = `Timeline of ${id}`
  $('timeline-hold').textContent = t.hold
    ? `status ${t.hold.status}${t.hold.outcome ? `, handler ${t.hold.outcome}` : ''}, generation ${t.hold.generation}` +
      (t.job ? ` · job attempt ${t.job.attempt}${t.job.lastError ? `, last error: ${t.job.lastError}` : ''}` : '')
    : 'no hold with this id (never seen, or past retention)'
  $('timeline-entries').replaceChildren(...t.entries.map((e) => el('li', `${time(e.at)} ${e.kind}: ${e.detail}`)))
}

function tickCountdowns () {
  for (const cell of document.querySelectorAll('#holds .countdown')) {
    cell.textContent = fmtLeft(Number(cell.dataset.expiresAt) - serverNow())
  }
}

function report (err) {
  if (err instanceof Unauthorized) return signOut('That token was refused. Enter an admin token.')
  $('status').textContent = `Could not refresh: ${err.message}`
}

async function refresh () {
  clearTimeout(timer)
  try {
    const [summary, deadlines, health, dead, audit] = await Promise.all([
      api('/admin/summary'), api('/admin/deadlines?buckets=60&bucketMs=60000'), api('/admin/health'),
      api('/admin/dead-letters?limit=50'), api('/admin/audit')
    ])
    renderSummary(summary)
    renderDeadlines(deadlines)
    renderHealth(health)
    renderDead(dead)
    renderAudit(audit)
    $('status').textContent = `updated ${new Date().toLocaleTimeString()}`
  } catch (err) {
    report(err)
    if (err instanceof Unauthorized) return
  }
  timer = setTimeout(() => { void refresh() }, REFRESH_MS)
}

function signOut (message = '') {
  clearTimeout(timer)
  token = null
  sessionStorage.removeItem(TOKEN_KEY)
  $('main').hidden = true
  $('sign-out').hidden = true
  $('login').hidden = false
  $('login-error').textContent = message
  $('token').focus()
}

function signIn () {
  $('login').hidden = true
  $('main').hidden = false
  $('sign-out').hidden = false
  void refresh()
  void searchHolds().catch(report)
}

$('login').addEventListener('submit', (event) => {
  event.preventDefault()
  token = $('token').value.trim()
  $('token').value = ''
  sessionStorage.setItem(TOKEN_KEY, token)
  signIn()
})
$('sign-out').addEventListener('click', () => signOut())
$('search').addEventListener('submit', (event) => {
  event.preventDefault()
  holdsPrefix = $('prefix').value.trim()
  void searchHolds().catch(report)
})
$('holds-more').addEventListener('click', () => { void searchHolds(true).catch(report) })
const selection = () => ({ letters: [...selected.values()] })
$('replay-selected').addEventListener('click', () => { if (selected.size > 0) void dryRun('replay', selection(), 'the selected ones') })
$('purge-selected').addEventListener('click', () => { if (selected.size > 0) void dryRun('purge', selection(), 'the selected ones') })
$('replay-all').addEventListener('click', () => { void dryRun('replay', { all: true }, 'every one that died until now') })
$('purge-all').addEventListener('click', () => { void dryRun('purge', { all: true }, 'every one that died until now') })
$('confirm-run').addEventListener('click', () => { void confirmRun() })
$('confirm-cancel').addEventListener('click', () => closeConfirm())
document.addEventListener('keydown', (event) => { if (event.key === 'Escape' && !$('confirm').hidden) $('confirm-cancel').click() })
window.addEventListener('resize', () => {
  for (const [id, chart] of Object.entries(charts)) chart.setSize(chartSize($(id)))
})
setInterval(tickCountdowns, 250)

if (token) signIn()
else signOut()
