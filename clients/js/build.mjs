// The build: src/ into the two files the package ships, minified, ES2017.
//   dist/index.mjs        ES module (`module`, `exports.import`): bundlers, browsers
//   miniprogram/index.js  CommonJS (`main`, `exports.require`, and the
//                         `miniprogram` directory WeChat's "build npm" copies)
// Both are committed, so a path install, a copied file, WeChat DevTools and
// the dev server's demo page (include_str!) need no Node tooling;
// test/build.test.js rebuilds them and fails on any byte that differs.
//
// node build.mjs          writes both
// node build.mjs --check  writes nothing, fails when a committed file is stale

import { readFile, writeFile } from 'node:fs/promises'
import { fileURLToPath } from 'node:url'

import { build } from 'esbuild'

const here = (path) => fileURLToPath(new URL(path, import.meta.url))

/** Each shipped file: its path and esbuild format. */
export const OUTPUTS = [
  { path: 'dist/index.mjs', format: 'esm' },
  { path: 'miniprogram/index.js', format: 'cjs' },
]

const BANNER = '/* gatehouse-client (MIT OR Apache-2.0): built from src/ by build.mjs; do not edit */'

/** The text of `format`'s build, from the source as it is now. */
export async function bundle(format) {
  const result = await build({
    entryPoints: [here('src/index.mjs')],
    bundle: true,
    format,
    // ES2017 syntax: esbuild lowers newer syntax or stops with an error.
    // (Built-ins it leaves alone: test/build.test.js checks those.)
    target: 'es2017',
    platform: 'neutral',
    minify: true,
    legalComments: 'none',
    banner: { js: BANNER },
    charset: 'utf8',
    write: false,
    logLevel: 'silent',
  })
  return result.outputFiles[0].text
}

async function main(check) {
  const stale = []
  for (const { path, format } of OUTPUTS) {
    const text = await bundle(format)
    const committed = await readFile(here(path), 'utf8').catch(() => null)
    if (committed === text) continue
    stale.push(path)
    if (!check) await writeFile(here(path), text)
  }
  if (check && stale.length) {
    console.error(`stale: ${stale.join(', ')} (run node build.mjs)`)
    process.exit(1)
  }
  console.log(stale.length ? `${check ? 'stale' : 'wrote'}: ${stale.join(', ')}` : 'up to date')
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main(process.argv.includes('--check'))
