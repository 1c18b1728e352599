// Copies the dashboard page (dashboard/*.html, *.css, *.js) to dist/dashboard/,
// where the built API serves it from (src/admin/page.ts), and uPlot's two
// browser files to dist/dashboard/vendor/. scripts/bundle.mjs calls it to put
// the same files beside the bundles.
import { copyFileSync, mkdirSync, readdirSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'

const root = fileURLToPath(new URL('..', import.meta.url))
const UPLOT_FILES = ['uPlot.iife.min.js', 'uPlot.min.css']

/** Copies the page and uPlot's files into `to`. */
export function copyDashboard (to) {
  const from = join(root, 'dashboard')
  const files = readdirSync(from).filter((name) => /\.(html|css|js)$/.test(name))
  mkdirSync(join(to, 'vendor'), { recursive: true })
  for (const name of files) copyFileSync(join(from, name), join(to, name))
  for (const name of UPLOT_FILES) copyFileSync(join(root, 'node_modules', 'uplot', 'dist', name), join(to, 'vendor', name))
  return files.length + UPLOT_FILES.length
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const count = copyDashboard(join(root, 'dist', 'dashboard'))
  console.log(`copy-dashboard: copied ${count} files to dist/dashboard/`)
}
