import { readFileSync } from 'node:fs'
import t from 'tap'
import { ConfigSchema } from '../src/config.js'
import { Errors } from '../src/errors.js'

const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8')

t.test('the README config table lists every variable with its default', async (t) => {
  for (const [name, schema] of Object.entries(ConfigSchema.properties)) {
    const row = readme.split('\n').find((l) => l.startsWith(`| \`${name}\` |`))
    t.ok(row, `${name} is in the table`)
    t.ok(row?.includes(`\`${String(schema.default)}\``), `${name} shows its default ${String(schema.default)}`)
  }
})

t.test('the README lists every error code with its status', async (t) => {
  for (const [code, Err] of Object.entries(Errors)) {
    const status = new Err('x', 1, 1).statusCode
    t.ok(readme.includes(`| \`${code}\` | ${status} |`), `${code} ${status}`)
  }
})
