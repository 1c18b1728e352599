import { createHmac, timingSafeEqual } from 'node:crypto'

/**
 * Webhook signatures, the way payment providers sign theirs: the header
 * `Checkout-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`
 * keyed with WEBHOOK_SECRET. The worker signs with signWebhook; receivers
 * check with verifyWebhookSignature (exported for them, no dependencies).
 */
export const SIGNATURE_HEADER = 'checkout-signature'

const hmac = (secret: string, timestamp: number, body: string) =>
  createHmac('sha256', secret).update(`${timestamp}.${body}`).digest('hex')

/** The header value for a body sent at `nowMs`. */
export function signWebhook (body: string, secret: string, nowMs = Date.now()): string {
  const t = Math.floor(nowMs / 1000)
  return `t=${t},v1=${hmac(secret, t, body)}`
}

/**
 * True when `header` is a valid signature of exactly `rawBody` (the bytes
 * received, before any JSON parsing) made with `secret` no more than
 * `toleranceSeconds` away from now. Compares in constant time.
 */
export function verifyWebhookSignature (
  rawBody: string | Buffer, header: string | undefined, secret: string, toleranceSeconds = 300, nowMs = Date.now()
): boolean {
  if (!header || !secret) return false
  const parts = new Map(header.split(',').map((p) => {
    const i = p.indexOf('=')
    return [p.slice(0, i).trim(), p.slice(i + 1).trim()] as const
  }))
  const t = Number(parts.get('t'))
  const v1 = parts.get('v1') ?? ''
  if (!Number.isInteger(t) || !/^[0-9a-f]{64}$/.test(v1)) return false
  if (Math.abs(nowMs / 1000 - t) > toleranceSeconds) return false
  const expected = Buffer.from(hmac(secret, t, typeof rawBody === 'string' ? rawBody : rawBody.toString('utf8')), 'hex')
  return timingSafeEqual(expected, Buffer.from(v1, 'hex'))
}
