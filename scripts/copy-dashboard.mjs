// Copies the dashboard page (dashboard/*.html, *.css, *.js) to dist/dashboard/,
// where the built API serves it from (src/admin/page.ts). uPlot is served
// from its package, a runtime dependency.
import { copyFileSync, mkdirSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const from = join(root, 'dashboard')
const to = join(root, 'dist', 'dashboard')
const files = readdirSync(from).filter((name) => /\.(html|css|js)$/.test(name))
mkdirSync(to, { recursive: true })
for (const name of files) copyFileSync(join(from, name), join(to, name))
console.log(`copy-dashboard: copied ${files.length} files to dist/dashboard/`)
