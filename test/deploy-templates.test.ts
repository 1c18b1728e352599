import { existsSync, readFileSync, readdirSync } from 'node:fs'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import t from 'tap'
import { parse } from 'yaml'
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
