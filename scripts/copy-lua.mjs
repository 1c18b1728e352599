// Copies every *.lua file under src/ to the same relative path under dist/src/.
// tsc only emits JavaScript; src/store/scripts.ts reads its Lua files next to
// itself at run time, so the build output needs them too.
import { copyFileSync, mkdirSync, readdirSync } from 'node:fs'
import { dirname, join, relative } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const srcDir = join(root, 'src')
const outDir = join(root, 'dist', 'src')

const files = readdirSync(srcDir, { recursive: true, withFileTypes: true })
  .filter((entry) => entry.isFile() && entry.name.endsWith('.lua'))
  .map((entry) => relative(srcDir, join(entry.parentPath ?? entry.path, entry.name)))
  .sort()

if (files.length === 0) {
  console.error('copy-lua: no .lua files found under src/')
  process.exit(1)
}

for (const file of files) {
  const target = join(outDir, file)
  mkdirSync(dirname(target), { recursive: true })
  copyFileSync(join(srcDir, file), target)
}
console.log(`copy-lua: copied ${files.length} Lua files to dist/src/`)
