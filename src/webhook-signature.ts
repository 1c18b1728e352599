import { createHmac, timingSafeEqual } from 'node:crypto'

/**
 * Webhook signatures, the way payment providers sign theirs: the header
 * `Checkout-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>." and the raw body bytes>`
 * keyed with WEBHOOK_SECRET, one `v1=` per secret while a rotation has two.
 * The worker signs with signWebhook; receivers check with
 * verifyWebhookSignature. Receivers load this file alone (the package entry
 * `checkout-expiry/webhook-signature`, or a copy of it), so it imports
 * nothing but node:crypto; test/examples.test.ts holds it to that.
 */
export const SIGNATURE_HEADER = 'checkout-signature'
export const DEFAULT_TOLERANCE_SECONDS = 300

/** The body exactly as sent or received: bytes, or a string that stands for its UTF-8 bytes. */
export type RawBody = string | Uint8Array
/** One secret, several (a rotation), or a comma-separated string of them as WEBHOOK_SECRET holds. */
export type WebhookSecrets = string | readonly string[]

/** The secrets in order, without empty entries. */
export function webhookSecrets (secrets: WebhookSecrets | undefined): string[] {
  if (secrets === undefined) return []
  return (typeof secrets === 'string' ? secrets.split(',') : [...secrets]).filter((s) => s !== '')
}

const bytesOf = (body: RawBody): Uint8Array => typeof body === 'string' ? Buffer.from(body, 'utf8') : body

const hmac = (secret: string, timestamp: number, body: Uint8Array): Buffer =>
  createHmac('sha256', secret).update(`${timestamp}.`).update(body).digest()

/** The header value for a body sent at `nowMs`: one v1= per secret, in the order given. */
export function signWebhook (body: RawBody, secrets: WebhookSecrets, nowMs = Date.now()): string {
  const keys = webhookSecrets(secrets)
  if (keys.length === 0) throw new TypeError('signWebhook needs a secret')
  const t = Math.floor(nowMs / 1000)
  const bytes = bytesOf(body)
  return [`t=${t}`, ...keys.map((key) => `v1=${hmac(key, t, bytes).toString('hex')}`)].join(',')
}

/** The one timestamp (two make it ambiguous) and every well-formed v1 of a header; other schemes are skipped. */
function parseHeader (header: string): { t: number | undefined, v1: Buffer[] } {
  const timestamps: string[] = []
  const v1: Buffer[] = []
  for (const part of header.split(',')) {
    const i = part.indexOf('=')
    if (i < 0) continue
    const key = part.slice(0, i).trim()
    const value = part.slice(i + 1).trim()
    if (key === 't') timestamps.push(value)
    else if (key === 'v1' && /^[0-9a-f]{64}$/.test(value)) v1.push(Buffer.from(value, 'hex'))
  }
  const [t] = timestamps
  return { t: timestamps.length === 1 && /^\d{1,15}$/.test(t ?? '') ? Number(t) : undefined, v1 }
}

/**
 * True when `header` carries a valid signature of exactly `rawBody` (the
 * bytes received, before any decoding or JSON parsing) made with any of
 * `secrets`, no more than `toleranceSeconds` away from now. Every v1= is
 * compared with every secret, each in constant time. A tolerance or clock
 * that is not a finite number (NaN, Infinity) or is negative throws a
 * RangeError: a typo in a receiver's setting must not accept every old
 * signature.
 */
export function verifyWebhookSignature (
  rawBody: RawBody, header: string | undefined, secrets: WebhookSecrets | undefined,
  toleranceSeconds = DEFAULT_TOLERANCE_SECONDS, nowMs = Date.now()
): boolean {
  if (!Number.isFinite(toleranceSeconds) || toleranceSeconds < 0) {
    throw new RangeError(`verifyWebhookSignature: toleranceSeconds must be a finite number of seconds, at least 0 (got ${toleranceSeconds})`)
  }
  if (!Number.isFinite(nowMs)) throw new RangeError(`verifyWebhookSignature: nowMs must be a finite number (got ${nowMs})`)
  const keys = webhookSecrets(secrets)
  if (!header || keys.length === 0) return false
  const { t, v1 } = parseHeader(header)
  if (t === undefined || v1.length === 0) return false
  if (Math.abs(nowMs / 1000 - t) > toleranceSeconds) return false
  const bytes = bytesOf(rawBody)
  let matched = false
  for (const key of keys) {
    const expected = hmac(key, t, bytes)
    // No early exit: the time taken does not tell which entry matched.
    for (const candidate of v1) matched = timingSafeEqual(expected, candidate) || matched
  }
  return matched
}
