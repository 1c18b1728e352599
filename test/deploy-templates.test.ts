import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { parse, parseAllDocuments } from 'yaml'
import { ConfigSchema } from '../src/config.js'

/**
 * What the AWS templates name exists: every function handler is a bundle
 * (scripts/bundle-entries.json) whose module exports it, the code directory
 * is where `npm run bundle` writes, every container command is a built
 * entry, and every environment variable is one the config schema reads.
 * cfn-lint checks the rest (.ci/run).
 */
const root = fileURLToPath(new URL('../', import.meta.url))
const awsDir = join(root, 'deploy', 'aws')
const entries = JSON.parse(readFileSync(join(root, 'scripts', 'bundle-entries.json'), 'utf8')) as Record<string, string>
const settings = new Set(Object.keys(ConfigSchema.properties))

interface Resource { Type: string, Properties?: Record<string, unknown> }
interface Template { Globals?: { Function?: Record<string, unknown> }, Resources: Record<string, Resource> }
type Env = { Variables?: Record<string, unknown> } | undefined

const templates = readdirSync(awsDir).filter((f) => f.endsWith('.yaml'))
t.ok(templates.length > 0, 'there are templates')

for (const file of templates) {
  // CloudFormation's short tags (!Ref, !Sub...) are kept as the plain values they tag.
  const template = parse(readFileSync(join(awsDir, file), 'utf8'), { logLevel: 'silent' }) as Template
  const globals = template.Globals?.Function ?? {}

  t.test(`${file}: function handlers are bundles that export them`, async (t) => {
    const functions = Object.entries(template.Resources).filter(([, r]) => r.Type === 'AWS::Serverless::Function')
    t.ok(functions.length > 0)
    for (const [name, fn] of functions) {
      const codeUri = String(fn.Properties?.CodeUri ?? globals.CodeUri)
      t.equal(resolve(awsDir, codeUri), join(root, 'dist', 'bundle'), `${name}: code from dist/bundle`)
      const [bundle = '', exported = ''] = String(fn.Properties?.Handler).split('.')
      const source = entries[bundle]
      t.ok(source, `${name}: ${bundle}.mjs is a bundle`)
      if (!source) continue
      t.match(readFileSync(join(root, source), 'utf8'), new RegExp(`^export (async )?function ${exported} `, 'm'), `${name}: ${source} exports ${exported}`)
    }
  })

  t.test(`${file}: environment variables are settings`, async (t) => {
    const names: string[] = Object.keys((globals.Environment as Env)?.Variables ?? {})
    for (const r of Object.values(template.Resources)) {
      names.push(...Object.keys((r.Properties?.Environment as Env)?.Variables ?? {}))
      const containers = (r.Properties?.ContainerDefinitions ?? []) as Array<{ Command?: string[], Environment?: Array<{ Name: string }> }>
      for (const c of containers) {
        names.push(...(c.Environment ?? []).map((e) => e.Name))
        const built = c.Command?.[1] ?? ''
        t.ok(existsSync(join(root, built.replace(/^dist\//, '').replace(/\.js$/, '.ts'))), `container command ${built} is a built entry`)
      }
    }
    t.ok(names.length > 0)
    t.same(names.filter((n) => !settings.has(n)), [], 'every name is in src/config.ts')
  })
}

/** The built entry a `node dist/...js` command runs exists in the sources. */
const builtEntry = (command: string[]): boolean => command[0] === 'node' && existsSync(join(root, (command[1] ?? '').replace(/^dist\//, '').replace(/\.js$/, '.ts')))
const shutdownMs = (env: Record<string, string>): number => Number(env.SHUTDOWN_TIMEOUT_MS ?? ConfigSchema.properties.SHUTDOWN_TIMEOUT_MS.default)

t.test('Procfile and app.json: built entries, settings', async (t) => {
  const procfile = readFileSync(join(root, 'Procfile'), 'utf8').trim().split('\n').map((l) => l.split(': '))
  t.same(procfile.map(([type]) => type), ['web', 'worker'])
  for (const [type, command = ''] of procfile) t.ok(builtEntry(command.split(' ')), `${type}: ${command}`)
  const app = JSON.parse(readFileSync(join(root, 'app.json'), 'utf8')) as { env: Record<string, { value?: string }>, scripts: { postdeploy: string } }
  t.same(Object.keys(app.env).filter((n) => !settings.has(n)), [], 'app.json env are settings')
  t.ok(shutdownMs(Object.fromEntries(Object.entries(app.env).map(([k, v]) => [k, v.value ?? '']))) + 1000 < 30_000, "drains within Heroku's 30 s")
  t.ok(builtEntry(app.scripts.postdeploy.split(' ')), 'the post-deploy check runs a built entry')
})

t.test('Kubernetes: built entries, settings, probes, grace above the shutdown deadline', async (t) => {
  const docs = parseAllDocuments(readFileSync(join(root, 'deploy/kubernetes/checkout-expiry.yaml'), 'utf8')).map((d) => d.toJS() as {
    kind: string, data?: Record<string, string>, spec?: { template?: { spec: { terminationGracePeriodSeconds: number, containers: Array<{ command: string[], livenessProbe: { httpGet: { path: string } }, readinessProbe: { httpGet: { path: string } } }> } } }
  })
  const config = docs.find((d) => d.kind === 'ConfigMap')?.data ?? {}
  t.same(Object.keys(config).filter((n) => !settings.has(n)), [], 'ConfigMap keys are settings')
  const deployments = docs.filter((d) => d.kind === 'Deployment')
  t.equal(deployments.length, 2)
  for (const d of deployments) {
    const pod = d.spec?.template?.spec
    t.ok(pod && pod.terminationGracePeriodSeconds * 1000 > shutdownMs(config) + 1000, 'grace above the shutdown deadline')
    for (const c of pod?.containers ?? []) {
      t.ok(builtEntry(c.command), c.command.join(' '))
      t.same([c.livenessProbe.httpGet.path, c.readinessProbe.httpGet.path], ['/healthz', '/readyz'])
    }
  }
  t.equal(docs.filter((d) => d.kind === 'PodDisruptionBudget').length, 2)
})

t.test('ECS task definitions: built entries, settings, stopTimeout above the shutdown deadline', async (t) => {
  for (const file of readdirSync(join(root, 'deploy/ecs'))) {
    const task = JSON.parse(readFileSync(join(root, 'deploy/ecs', file), 'utf8')) as {
      containerDefinitions: Array<{ command: string[], stopTimeout: number, environment: Array<{ name: string, value: string }>, secrets: Array<{ name: string }> }>
    }
    for (const c of task.containerDefinitions) {
      t.ok(builtEntry(c.command), `${file}: ${c.command.join(' ')}`)
      const env = Object.fromEntries(c.environment.map((e) => [e.name, e.value]))
      t.same([...Object.keys(env), ...c.secrets.map((s) => s.name)].filter((n) => !settings.has(n)), [], `${file}: settings`)
      t.ok(c.stopTimeout * 1000 > shutdownMs(env) + 1000, `${file}: stopTimeout above the shutdown deadline`)
    }
  }
})

t.test('systemd units: built entries, settings, SIGTERM to node, TimeoutStopSec above the shutdown deadline', async (t) => {
  const env = Object.fromEntries(readFileSync(join(root, 'deploy/systemd/checkout-expiry.env.example'), 'utf8')
    .split('\n').filter((l) => /^[A-Z]/.test(l)).map((l) => l.split('=', 2) as [string, string]))
  t.same(Object.keys(env).filter((n) => !settings.has(n)), [], 'the environment file names settings')
  for (const unit of ['checkout-expiry-api.service', 'checkout-expiry-worker.service']) {
    const text = readFileSync(join(root, 'deploy/systemd', unit), 'utf8')
    const value = (key: string) => new RegExp(`^${key}=(.*)$`, 'm').exec(text)?.[1] ?? ''
    const [exe = '', script = ''] = value('ExecStart').split(' ')
    t.ok(builtEntry([exe.replace(/^.*\//, ''), script.replace(/^\/opt\/checkout-expiry\//, '')]), `${unit}: ${value('ExecStart')}`)
    t.match(value('EnvironmentFile'), /checkout-expiry\.env$/, `${unit}: EnvironmentFile`)
    t.same([value('Restart'), value('KillSignal')], ['on-failure', 'SIGTERM'], `${unit}: Restart, KillSignal`)
    t.match(value('KillMode'), /^(mixed|control-group)$/, `${unit}: KillMode`)
    t.ok(Number(value('TimeoutStopSec')) * 1000 > shutdownMs(env) + 1000, `${unit}: TimeoutStopSec above the shutdown deadline`)
  }
})

t.test('Kubernetes ServiceMonitors: each selects a Service with the named port, whose pods a Deployment runs', async (t) => {
  type Labels = Record<string, string>
  interface Doc {
    kind: string
    metadata: { labels?: Labels }
    spec: {
      selector?: Labels & { matchLabels?: Labels }
      ports?: Array<{ name: string }>
      endpoints?: Array<{ port: string }>
      template?: { metadata: { labels: Labels }, spec: { containers: Array<{ ports?: Array<{ name: string }> }> } }
    }
  }
  const read = (file: string) => parseAllDocuments(readFileSync(join(root, 'deploy/kubernetes', file), 'utf8')).map((d) => d.toJS() as Doc)
  const docs = [...read('checkout-expiry.yaml'), ...read('servicemonitor.yaml')]
  const matches = (selector: Labels = {}, labels: Labels = {}) => Object.entries(selector).every(([k, v]) => labels[k] === v)
  const monitors = docs.filter((d) => d.kind === 'ServiceMonitor')
  t.equal(monitors.length, 2)
  for (const m of monitors) {
    const service = docs.find((d) => d.kind === 'Service' && matches(m.spec.selector?.matchLabels, d.metadata.labels))
    t.ok(service, 'a Service carries the selected labels')
    const ports = (service?.spec.ports ?? []).map((p) => p.name)
    t.ok((m.spec.endpoints ?? []).every((e) => ports.includes(e.port)), `ports ${ports.join(',')}`)
    const pods = docs.find((d) => d.kind === 'Deployment' && matches(service?.spec.selector, d.spec.template?.metadata.labels))
    t.ok(pods?.spec.template?.spec.containers.some((c) => (c.ports ?? []).some((p) => ports.includes(p.name))), 'a Deployment serves it')
  }
})
