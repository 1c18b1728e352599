/**
 * The methods each declared path takes, so a request for a known path with
 * another method is told 405 with `Allow` instead of 404. Filled from
 * Fastify's onRoute hook; matched on the path the router saw.
 */
export class RouteMethods {
  private readonly routes: Array<{ pattern: RegExp, methods: Set<string> }> = []

  add (url: string, method: string | string[]): void {
    // `:id` matches one segment, `*` (the docs' static files) the rest.
    const source = url.split('/').map((seg) => seg.startsWith(':') ? '[^/]+' : seg === '*' ? '.*' : seg.replace(/[.+?^${}()|[\]\\*]/g, '\\$&')).join('/')
    const pattern = new RegExp(`^${source}$`)
    let entry = this.routes.find((r) => r.pattern.source === pattern.source)
    if (!entry) this.routes.push(entry = { pattern, methods: new Set() })
    for (const m of [method].flat()) entry.methods.add(m.toUpperCase())
  }

  /** The methods the path takes, sorted; empty when no route has the path. */
  allowed (path: string): string[] {
    const methods = new Set<string>()
    for (const r of this.routes) if (r.pattern.test(path)) r.methods.forEach((m) => methods.add(m))
    return [...methods].sort()
  }
}
