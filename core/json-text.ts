/**
 * Reads a member's value out of JSON text as text, so that a published
 * `data` is forwarded exactly as the client wrote it: big numbers keep
 * their digits (`12345678901234567890`, `1e400`), duplicate keys stay.
 * A JSON.parse / JSON.stringify round trip would change those.
 */

/**
 * The value text of the last top-level member `key` of the JSON object in
 * `json`, without insignificant whitespace; undefined when there is none.
 * `json` must be valid JSON text holding an object (JSON.parse accepted it).
 */
export function memberText(json: string, key: string): string | undefined {
  let found: string | undefined;
  let i = skipSpace(json, 0) + 1; // past '{'
  for (;;) {
    i = skipSpace(json, i);
    if (json[i] === '}') return found;
    const keyEnd = stringEnd(json, i);
    const raw = json.slice(i, keyEnd);
    const name = raw.includes('\\') ? (JSON.parse(raw) as string) : raw.slice(1, -1);
    const valueStart = skipSpace(json, skipSpace(json, keyEnd) + 1); // past ':'
    const valueEnd = valueEndAt(json, valueStart);
    // JSON.parse keeps the last of duplicate keys; so does this.
    if (name === key) found = compact(json.slice(valueStart, valueEnd));
    i = skipSpace(json, valueEnd);
    if (json[i] === ',') i++;
  }
}

/** The text of the JSON value that starts at `i` in `json`, as written. */
export function valueTextAt(json: string, i: number): string {
  return json.slice(i, valueEndAt(json, i));
}

function isSpace(c: string | undefined): boolean {
  return c === ' ' || c === '\t' || c === '\n' || c === '\r';
}

function skipSpace(json: string, i: number): number {
  while (isSpace(json[i])) i++;
  return i;
}

/** The index just past the string literal that starts at `i`. */
function stringEnd(json: string, i: number): number {
  let j = i + 1;
  while (json[j] !== '"') j += json[j] === '\\' ? 2 : 1;
  return j + 1;
}

/** The index just past the value that starts at `i`. */
function valueEndAt(json: string, i: number): number {
  const c = json[i];
  if (c === '"') return stringEnd(json, i);
  if (c === '{' || c === '[') {
    let depth = 0;
    let j = i;
    do {
      const d = json[j];
      if (d === '"') {
        j = stringEnd(json, j);
        continue;
      }
      if (d === '{' || d === '[') depth++;
      else if (d === '}' || d === ']') depth--;
      j++;
    } while (depth > 0);
    return j;
  }
  // A number or a literal runs to the next delimiter.
  let j = i;
  while (j < json.length && !isSpace(json[j]) && json[j] !== ',' && json[j] !== '}' && json[j] !== ']') j++;
  return j;
}

/** `text` without whitespace outside strings (raw newlines would break line framing). */
function compact(text: string): string {
  if (!/[ \t\n\r]/.test(text)) return text;
  let out = '';
  for (let i = 0; i < text.length; ) {
    if (text[i] === '"') {
      const end = stringEnd(text, i);
      out += text.slice(i, end);
      i = end;
    } else {
      if (!isSpace(text[i])) out += text[i];
      i++;
    }
  }
  return out;
}
