// What gatehouse-client costs a mini-program's package: index.js minified
// (esbuild) and gzipped (level 9), against a budget. The minified module
// must still export what the source does.

import assert from 'node:assert/strict'
import { readFile } from 'node:fs/promises'
import { it } from 'node:test'
import { gzipSync } from 'node:zlib'

import { transform } from 'esbuild'

import * as source from '../index.js'

/** Bytes, minified and gzipped. 4 KiB: well under a mini-program's 2 MB main package, and a cap on creep. */
const BUDGET = 4096

/** { raw, minified, gzipped } byte counts of index.js, and the minified code. */
async function measure() {
  const text = await readFile(new URL('../index.js', import.meta.url), 'utf8')
  const { code } = await transform(text, { minify: true, format: 'esm', target: 'es2019' })
  return {
    code,
    raw: Buffer.byteLength(text),
    minified: Buffer.byteLength(code),
    gzipped: gzipSync(code, { level: 9 }).length,
  }
}

it(`index.js is at most ${BUDGET} bytes minified and gzipped, and still exports the same`, async (t) => {
  const size = await measure()
  t.diagnostic(`index.js: ${size.raw} bytes, ${size.minified} minified, ${size.gzipped} minified and gzipped`)
  assert.ok(size.gzipped <= BUDGET, `${size.gzipped} bytes minified and gzipped, over the ${BUDGET}-byte budget`)
  const minified = await import(`data:text/javascript;base64,${Buffer.from(size.code).toString('base64')}`)
  assert.deepEqual(Object.keys(minified).sort(), Object.keys(source).sort())
  assert.equal(typeof minified.createClient({ baseUrl: 'http://127.0.0.1:9' }).captcha.create, 'function')
})
