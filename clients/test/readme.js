// The documentation's code blocks, as the documentation has them: a section
// by its heading (in whichever of README.md and docs/*.md holds it; the
// client snippets are in docs/clients.md), a block by its first line (the
// file it names) or its language. The tests run these very texts; the one
// change is the placeholder base URL, which becomes the dev server's.

import { readdirSync, readFileSync } from 'node:fs'

const ROOT = new URL('../../', import.meta.url)

export const BASE_URL_PLACEHOLDER = 'https://<api-id>.execute-api.<region>.amazonaws.com'

/** README.md and docs/*.md, by their names: [{ name, text }]. */
function documents() {
  const guides = readdirSync(new URL('docs/', ROOT))
    .filter((name) => name.endsWith('.md'))
    .sort()
    .map((name) => `docs/${name}`)
  return ['README.md', ...guides].map((name) => ({ name, text: readFileSync(new URL(name, ROOT), 'utf8') }))
}

/**
 * The text of the section headed `### heading` (up to the next heading of
 * level 2 or 3), from the one document that has it.
 */
export function section(heading) {
  const holders = documents().filter(({ text }) => text.includes(`\n### ${heading}\n`))
  if (holders.length !== 1) {
    throw new Error(`${holders.length} documents (${holders.map((d) => d.name).join(', ') || 'none of README.md, docs/*.md'}) have a section "### ${heading}"`)
  }
  const { text } = holders[0]
  const start = text.indexOf(`\n### ${heading}\n`)
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
  if (found.length !== 1) throw new Error(`"${heading}": ${found.length} blocks match ${firstLine || lang}`)
  const code = found[0].code
  if (!baseUrl) return code
  if (!code.includes(BASE_URL_PLACEHOLDER)) throw new Error(`"${heading}": no ${BASE_URL_PLACEHOLDER} in ${firstLine || lang}`)
  return code.replaceAll(BASE_URL_PLACEHOLDER, baseUrl)
}
