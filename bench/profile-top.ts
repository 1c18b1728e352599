import { readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'
import { root } from './children.js'

/**
 * `node --import tsx bench/profile-top.ts <file.cpuprofile> [top]`: the
 * frames with the most self time in a V8 CPU profile (as written by
 * `node --cpu-prof`, e.g. with BENCH_CPU_PROF=1), and self time by
 * category: garbage collection, idle/program, Node internals, each
 * node_modules package, this project's src/ and the rest of it. Under tsx,
 * line numbers are those of the compiled module, close to the source's.
 */
interface ProfileNode {
  id: number
  callFrame: { functionName: string, url: string, lineNumber: number }
}
interface Profile {
  nodes: ProfileNode[]
  samples: number[]
}

const [file, topArg] = process.argv.slice(2)
if (!file) {
  console.error('usage: node --import tsx bench/profile-top.ts <file.cpuprofile> [top]')
  process.exit(2)
}
const top = Number(topArg ?? 25)
const profile = JSON.parse(readFileSync(file, 'utf8')) as Profile
const byId = new Map(profile.nodes.map((n) => [n.id, n]))

function where (url: string): string {
  if (!url.startsWith('file://')) return url
  const path = fileURLToPath(url)
  return path.startsWith(root) ? path.slice(root.length) : path
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
for (const id of profile.samples) {
  const node = byId.get(id)
  if (!node) continue
  const { functionName, url, lineNumber } = node.callFrame
  const fn = functionName || '(anonymous)'
  const at = url ? `${where(url)}:${lineNumber + 1}` : ''
  const key = `${fn} ${at}`
  const cat = category(functionName, url)
  const frame = frames.get(key) ?? { fn, at, category: cat, samples: 0 }
  frame.samples++
  frames.set(key, frame)
  categories.set(cat, (categories.get(cat) ?? 0) + 1)
}

const total = profile.samples.length
const pct = (n: number) => `${(100 * n / total).toFixed(1).padStart(5)}%`
const busy = total - (categories.get('idle/program') ?? 0)
console.log(`${file}: ${total} samples, ${pct(busy).trim()} not idle/program`)
console.log(`\ntop ${top} frames by self time:`)
for (const f of [...frames.values()].sort((a, b) => b.samples - a.samples).slice(0, top)) {
  console.log(`${pct(f.samples)}  ${f.fn}  ${f.at}`)
}
console.log('\nself time by category (% of all samples, % of those not idle/program):')
for (const [name, n] of [...categories.entries()].sort((a, b) => b[1] - a[1])) {
  const ofBusy = name === 'idle/program' || busy === 0 ? '' : `${(100 * n / busy).toFixed(1).padStart(5)}%`
  console.log(`${pct(n)}  ${ofBusy.padStart(6)}  ${name}`)
}
