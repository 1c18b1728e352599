import t from 'tap'
import { MAX_JSON_DEPTH } from '../../src/plugins/json-body.js'
import { testApp } from '../helpers/app.js'
import { startRedis } from '../helpers/redis.js'

/** A body nested deeper than MAX_JSON_DEPTH is refused with 400 before anything recursive runs (no 500 from a stack overflow). */
const redis = await startRedis()
t.teardown(redis.stop)
const { app } = await testApp(redis.url)
t.teardown(() => app.close())

const nested = (depth: number, open = '{"a":', close = '}') => open.repeat(depth) + '1' + close.repeat(depth)
const post = async (payload: string, headers: Record<string, string> = {}) => await app.inject({
  method: 'POST', url: '/checkout', headers: { 'content-type': 'application/json', ...headers }, payload
})

t.test('5,000 levels of objects or arrays, with and without an Idempotency-Key: 400 naming the limit', async (t) => {
  for (const [what, inner] of [['objects', nested(5000)], ['arrays', nested(5000, '[', ']')]] as const) {
    for (const headers of [{}, { 'idempotency-key': `deep-${what}` }] as Array<Record<string, string>>) {
      const res = await post(`{"id":"deep-${what}","ttlMs":60000,"payload":${inner}}`, headers)
      t.equal(res.statusCode, 400, `${what} ${JSON.stringify(headers)}`)
      t.equal(res.json().code, 'BODY_TOO_DEEP')
      t.match(res.json().message, new RegExp(`nested deeper than ${MAX_JSON_DEPTH}`))
    }
  }
})

t.test('brackets inside strings do not count; a payload at the limit is taken', async (t) => {
  const strings = `{"id":"deep-strings","ttlMs":60000,"payload":{"s":"${'{['.repeat(5000)}"}}`
  t.equal((await post(strings)).statusCode, 201, 'brackets in a string are text')
  const escaped = `{"id":"deep-escaped","ttlMs":60000,"payload":{"s":"\\\\\\"${'['.repeat(100)}"}}`
  t.equal((await post(escaped)).statusCode, 201, 'an escaped quote does not end the string early')
  // The body is depth 1 and the payload adds to it.
  const atLimit = `{"id":"deep-ok","ttlMs":60000,"payload":${nested(MAX_JSON_DEPTH - 1)}}`
  t.equal((await post(atLimit)).statusCode, 201, `${MAX_JSON_DEPTH} levels in all`)
  const over = `{"id":"deep-over","ttlMs":60000,"payload":${nested(MAX_JSON_DEPTH)}}`
  t.equal((await post(over)).statusCode, 400, `${MAX_JSON_DEPTH + 1} levels in all`)
})

t.test('a "__proto__" key is refused as such, not as broken JSON', async (t) => {
  for (const payload of ['{"__proto__":{"x":1}}', '{"constructor":{"prototype":{"x":1}}}']) {
    const res = await post(`{"id":"proto","ttlMs":60000,"payload":${payload}}`)
    t.equal(res.statusCode, 400, payload)
    t.equal(res.json().code, 'FORBIDDEN_KEY', payload)
  }
  const broken = (await post('{"id":"broken" "ttlMs":1}')).json()
  t.equal(broken.code, 'INVALID_JSON', 'broken JSON is still INVALID_JSON')
  t.match(broken.message, /position 15/, 'and says where')
})
