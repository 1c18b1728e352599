// One self-contained file per entry point under dist/bundle/, for a Lambda
// zip or a container image that carries no source tree and no node_modules.
// The Lua scripts are put into the bundle at build time: every file under
// src/store/scripts/ by its path there, which src/store/scripts.ts then
// reads instead of the disk (and resolves `-- @include` as it always does).
// The one other thing read from disk at run time is the /docs page's files
// (@fastify/swagger-ui): copied to dist/bundle/swagger-ui/static/, found
// there through the __dirname its modules get in the bundle.
import { cpSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { dirname, join, relative, sep } from 'node:path'
import { fileURLToPath } from 'node:url'
import { build } from 'esbuild'
import { copyDashboard } from './copy-dashboard.mjs'

const root = fileURLToPath(new URL('..', import.meta.url))
const scriptsDir = join(root, 'src', 'store', 'scripts')
// `node scripts/bundle.mjs [outdir]`: dist/bundle/ by default.
const outdir = process.argv[2] ?? join(root, 'dist', 'bundle')

// Bundle name → entry module; deploy/ templates name the bundles by these names (test/deploy-templates.test.ts).
const ENTRY_POINTS = JSON.parse(readFileSync(join(root, 'scripts', 'bundle-entries.json'), 'utf8'))

function luaFiles () {
  const files = {}
  for (const entry of readdirSync(scriptsDir, { recursive: true, withFileTypes: true })) {
    if (!entry.isFile() || !entry.name.endsWith('.lua')) continue
    const path = join(entry.parentPath ?? entry.path, entry.name)
    files[relative(scriptsDir, path).split(sep).join('/')] = readFileSync(path, 'utf8')
  }
  if (!Object.keys(files).some((f) => /^[a-z-]+-\d+\.lua$/.test(f))) throw new Error(`bundle: no <command>-<keys>.lua under ${scriptsDir}`)
  return files
}

const swaggerUi = join(root, 'node_modules', '@fastify', 'swagger-ui')

/** In a bundle __dirname is the bundle's directory: swagger-ui's modules get their own place under it instead. */
const swaggerUiFiles = {
  name: 'swagger-ui-files',
  setup (b) {
    b.onLoad({ filter: /[\\/]@fastify[\\/]swagger-ui[\\/].*\.js$/ }, (args) => {
      const dir = relative(swaggerUi, dirname(args.path)).split(sep).join('/')
      const contents = readFileSync(args.path, 'utf8').replaceAll('__dirname', `(__dirname + ${JSON.stringify(`/swagger-ui/${dir}`)})`)
      return { contents, loader: 'js' }
    })
  }
}

const lua = luaFiles()
rmSync(outdir, { recursive: true, force: true })
await build({
  entryPoints: ENTRY_POINTS,
  outdir,
  outExtension: { '.js': '.mjs' },
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  sourcemap: true,
  legalComments: 'linked',
  define: { BUNDLED_LUA: JSON.stringify(lua), BUNDLED: 'true' },
  plugins: [swaggerUiFiles],
  // Dependencies written as CommonJS call require() for Node's own modules and read __dirname.
  banner: {
    js: [
      "import { createRequire as __bundleRequire } from 'node:module';",
      "import { dirname as __bundleDirname } from 'node:path';",
      "import { fileURLToPath as __bundlePath } from 'node:url';",
      'const require = __bundleRequire(import.meta.url);',
      'const __filename = __bundlePath(import.meta.url);',
      'const __dirname = __bundleDirname(__filename);'
    ].join(' ')
  },
  logLevel: 'warning'
})
cpSync(join(swaggerUi, 'static'), join(outdir, 'swagger-ui', 'static'), { recursive: true })
// The dashboard page (DASHBOARD=true) beside the bundles: src/admin/page.ts looks for ./dashboard/.
copyDashboard(join(outdir, 'dashboard'))
console.log(`bundle: ${Object.keys(ENTRY_POINTS).length} entry points with ${Object.keys(lua).length} Lua files in ${outdir}`)
