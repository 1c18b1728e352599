import type { StoreContext } from './context.js'
import { direct } from './direct.js'

/**
 * The admin audit trail: one entry per action that changed data (replay,
 * purge), with who asked, what, when and how many. A capped stream under
 * the prefix; an entry is never edited.
 */
export interface AuditEntry {
  /** Stream id; its first part is the server time (ms). */
  id: string
  at: number
  /** Which admin token asked (a short hash, never the token) and from where. */
  who: string
  action: string
  count: number
  /** The selection, as the request gave it. */
  detail: string
}

export const AUDIT_MAXLEN = 10_000
const auditKey = (ctx: StoreContext) => `${ctx.keys.prefix}admin:audit`

export async function writeAudit (ctx: StoreContext, entry: Omit<AuditEntry, 'id' | 'at'>): Promise<string> {
  const id = await direct(ctx, async () => await ctx.redis.xadd(auditKey(ctx), 'MAXLEN', '~', AUDIT_MAXLEN, '*',
    'who', entry.who, 'action', entry.action, 'count', entry.count, 'detail', entry.detail))
  return id ?? ''
}

/** The newest `limit` entries, newest first. */
export async function readAudit (ctx: StoreContext, limit: number): Promise<AuditEntry[]> {
  const rows = await direct(ctx, async () => await ctx.redis.xrevrange(auditKey(ctx), '+', '-', 'COUNT', limit))
  return rows.map(([id, flat]) => {
    const f = new Map<string, string>()
    for (let i = 0; i + 1 < flat.length; i += 2) f.set(flat[i] as string, flat[i + 1] as string)
    return { id, at: Number(id.split('-')[0]), who: f.get('who') ?? '', action: f.get('action') ?? '', count: Number(f.get('count') ?? 0), detail: f.get('detail') ?? '' }
  })
}
