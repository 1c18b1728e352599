import { existsSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { root } from './children.js'

/**
 * `node --import tsx bench/profile-top.ts <file.cpuprofile> [top] [from-to]`: the
 * frames with the most self time in a V8 CPU profile (as written by
 * `node --cpu-prof`, e.g. with BENCH_CPU_PROF=1), and self time by
 * category: garbage collection, idle/program, Node internals, each
 * node_modules package, this project's src/ and the rest of it. tsx compiles
 * a module into one line, so for the project's .ts files the line shown is
 * where a function of that name is declared in the source (marked ~).
 * It also prints how busy the thread was in each second of the profile;
 * `from-to` (seconds, e.g. 53-64) keeps only the samples of that window,
 * such as a burst, leaving out start-up and idle waiting.
 */
interface ProfileNode {
  id: number
  callFrame: { functionName: string, url: string, lineNumber: number }
}
interface Profile {
  nodes: ProfileNode[]
  samples: number[]
  /** µs since the previous sample. */
  timeDeltas: number[]
}

const [file, topArg, windowArg] = process.argv.slice(2)
if (!file) {
  console.error('usage: node --import tsx bench/profile-top.ts <file.cpuprofile> [top] [from-to]')
  process.exit(2)
}
const top = Number(topArg ?? 25)
const [from, to] = (windowArg ?? '0-Infinity').split('-').map(Number) as [number, number]
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile
const byId = new Map(profile.nodes.map((n) => [n.id, n]))

// The second of the profile each sample falls in, and how busy each second was.
const second: number[] = []
const busyMs: number[] = []
let elapsed = 0
profile.samples.forEach((id, i) => {
  elapsed += profile.timeDeltas[i] ?? 0
  const s = Math.floor(elapsed / 1e6)
  second.push(s)
  if (byId.get(id)?.callFrame.functionName !== '(idle)') busyMs[s] = (busyMs[s] ?? 0) + (profile.timeDeltas[i + 1] ?? 0) / 1000
})
console.log(`busy % per second: ${Array.from(busyMs, (ms, s) => `${s}:${Math.round((ms ?? 0) / 10)}`).join(' ')}`)

function where (url: string): string {
  if (!url.startsWith('file://')) return url
  const path = fileURLToPath(url)
  return path.startsWith(root) ? path.slice(root.length) : path
}

const sources = new Map<string, string[]>()

/** The line declaring `fn` in a project .ts file, found by name; undefined when not found. */
function declaredAt (path: string, fn: string): number | undefined {
  if (!path.endsWith('.ts') || path.startsWith('/') || !/^[\w$]+$/.test(fn)) return undefined
  let lines = sources.get(path)
  if (!lines) {
    lines = existsSync(root + path) ? readFileSync(root + path, 'utf8').split('\n') : []
    sources.set(path, lines)
  }
  const decl = new RegExp(`^\\s*(export\\s+)?(default\\s+)?((async|function|private|protected|public|static|get|set)\\s+)*${fn}\\s*(<.*>)?\\s*\\(|^\\s*(export\\s+)?(const|let)\\s+${fn}\\b`)
  const i = lines.findIndex((line) => decl.test(line))
  return i < 0 ? undefined : i + 1
}

function location (fn: string, url: string, lineNumber: number): string {
  if (!url) return ''
  const path = where(url)
  if (lineNumber > 0) return `${path}:${lineNumber + 1}`
  const line = declaredAt(path, fn)
  return line === undefined ? path : `${path}:~${line}`
}

function category (fn: string, url: string): string {
  if (fn === '(garbage collector)') return 'garbage collection'
  if (fn === '(idle)' || fn === '(program)' || fn === '(root)') return 'idle/program'
  if (url === '' || url.startsWith('node:') || url.startsWith('wasm:')) return 'node internals (node:*, native, wasm)'
  const path = where(url)
  const modules = path.lastIndexOf('node_modules/')
  if (modules >= 0) {
    const parts = path.slice(modules + 'node_modules/'.length).split('/')
    return `node_modules: ${parts[0]?.startsWith('@') ? `${parts[0]}/${parts[1] ?? ''}` : parts[0] ?? '?'}`
  }
  if (path.startsWith('src/')) return 'project src/'
  return `project ${path.split('/')[0] ?? '?'}/`
}

const frames = new Map<string, { fn: string, at: string, category: string, samples: number }>()
const categories = new Map<string, number>()
let total = 0
for (const [i, id] of profile.samples.entries()) {
  const s = second[i] as number
  if (s < from || s >= to) continue
  total++
  const node = byId.get(id)
  if (!node) continue
  const { functionName, url, lineNumber } = node.callFrame
  const fn = functionName || '(anonymous)'
  const at = location(functionName, url, lineNumber)
  const key = `${fn} ${at}`
  const cat = category(functionName, url)
  const frame = frames.get(key) ?? { fn, at, category: cat, samples: 0 }
  frame.samples++
  frames.set(key, frame)
  categories.set(cat, (categories.get(cat) ?? 0) + 1)
}

const pct = (n: number) => `${(100 * n / total).toFixed(1).padStart(5)}%`
const busy = total - (categories.get('idle/program') ?? 0)
console.log(`${file}${windowArg ? ` (seconds ${windowArg})` : ''}: ${total} samples, ${pct(busy).trim()} not idle/program`)
const ofBusy = (n: number) => (busy === 0 ? '' : `${(100 * n / busy).toFixed(1).padStart(5)}%`)
console.log(`\ntop ${top} frames by self time (% of all samples, % of those not idle/program):`)
for (const f of [...frames.values()].sort((a, b) => b.samples - a.samples).slice(0, top)) {
  console.log(`${pct(f.samples)}  ${(f.category === 'idle/program' ? '' : ofBusy(f.samples)).padStart(6)}  ${f.fn}  ${f.at}`)
}
console.log('\nself time by category (% of all samples, % of those not idle/program):')
for (const [name, n] of [...categories.entries()].sort((a, b) => b[1] - a[1])) {
  console.log(`${pct(n)}  ${(name === 'idle/program' ? '' : ofBusy(n)).padStart(6)}  ${name}`)
}
