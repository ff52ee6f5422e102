// The README's code blocks, as the README has them: a section by its
// heading, a block by its first line (the file it names) or its language.
// The tests run these very texts; the one change is the placeholder base
// URL, which becomes the dev server's.

import { readFileSync } from 'node:fs'

const README = new URL('../../README.md', import.meta.url)

export const BASE_URL_PLACEHOLDER = 'https://<api-id>.execute-api.<region>.amazonaws.com'

/** The text of the section headed `### heading` (up to the next heading of level 2 or 3). */
export function section(heading) {
  const text = readFileSync(README, 'utf8')
  const start = text.indexOf(`\n### ${heading}\n`)
  if (start < 0) throw new Error(`README.md has no section "### ${heading}"`)
  const rest = text.slice(start + 1)
  const end = rest.slice(4).search(/\n#{2,3} /)
  return end < 0 ? rest : rest.slice(0, end + 4)
}

/** The code blocks of `text`: [{ lang, code }]. */
export function blocks(text) {
  return [...text.matchAll(/^```(\w*)\n([\s\S]*?)^```$/gm)].map((m) => ({ lang: m[1], code: m[2] }))
}

/**
 * The one block of section `heading` whose first line is `firstLine` (e.g.
 * '// app.js'), or whose language is `lang` when there is one such block;
 * with `baseUrl`, the placeholder base URL replaced by it.
 */
export function snippet(heading, { firstLine, lang, baseUrl }) {
  const found = blocks(section(heading)).filter((b) => (firstLine ? b.code.split('\n')[0] === firstLine : b.lang === lang))
  if (found.length !== 1) throw new Error(`README.md, "${heading}": ${found.length} blocks match ${firstLine || lang}`)
  const code = found[0].code
  if (!baseUrl) return code
  if (!code.includes(BASE_URL_PLACEHOLDER)) throw new Error(`README.md, "${heading}": no ${BASE_URL_PLACEHOLDER} in ${firstLine || lang}`)
  return code.replaceAll(BASE_URL_PLACEHOLDER, baseUrl)
}
