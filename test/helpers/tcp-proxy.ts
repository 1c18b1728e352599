import { connect, createServer, type Socket } from 'node:net'

/**
 * A TCP proxy on a loopback port in front of a Redis, for tests of a slow or
 * cut network: `delay` holds every chunk (both directions) that long before
 * passing it on, in order; `cut` stops forwarding with every socket left
 * open (a partition with no RST or FIN); `heal` passes on what was held.
 */
export interface TcpProxy {
  port: number
  url: string
  delay: (ms: number) => void
  cut: () => void
  heal: () => void
  close: () => Promise<void>
}

interface Pipe {
  to: Socket
  queue: Array<{ at: number, chunk: Buffer }>
  timer: NodeJS.Timeout | undefined
}

export async function startTcpProxy (targetPort: number): Promise<TcpProxy> {
  let delayMs = 0
  let cut = false
  const pipes: Pipe[] = []
  const sockets = new Set<Socket>()

  const pump = (p: Pipe) => {
    if (p.timer) clearTimeout(p.timer)
    p.timer = undefined
    if (cut) return
    const now = performance.now()
    while (p.queue.length > 0 && p.queue[0]!.at <= now) p.to.write(p.queue.shift()!.chunk)
    if (p.queue.length > 0) p.timer = setTimeout(() => pump(p), Math.max(1, p.queue[0]!.at - now))
  }
  const forward = (from: Socket, to: Socket) => {
    const p: Pipe = { to, queue: [], timer: undefined }
    pipes.push(p)
    from.on('data', (chunk: Buffer) => {
      // Never before an earlier chunk: the delay may have shrunk meanwhile.
      const last = p.queue.at(-1)?.at ?? 0
      p.queue.push({ at: Math.max(last, performance.now() + delayMs), chunk })
      pump(p)
    })
  }
  const server = createServer((client) => {
    const upstream = connect(targetPort, '127.0.0.1')
    for (const s of [client, upstream]) {
      sockets.add(s)
      s.on('error', () => {})
      s.on('close', () => { sockets.delete(s); client.destroy(); upstream.destroy() })
    }
    forward(client, upstream)
    forward(upstream, client)
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as { port: number }
  return {
    port,
    url: `redis://127.0.0.1:${port}/0`,
    delay: (ms) => { delayMs = ms },
    cut: () => { cut = true },
    heal: () => {
      cut = false
      for (const p of pipes) pump(p)
    },
    close: async () => {
      for (const p of pipes) if (p.timer) clearTimeout(p.timer)
      for (const s of sockets) s.destroy()
      await new Promise<void>((resolve) => server.close(() => resolve()))
    }
  }
}
