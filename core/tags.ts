/** Tag-set helpers shared by the commands and the broker. */

/** The canonical form of a tag set: distinct tags, sorted. `["b","a","a"]` → `["a","b"]`. */
export function canonicalTags(tags: readonly string[]): string[] {
  return [...new Set(tags)].sort();
}

/** A string that names a canonical tag set, usable as a map key. */
export function tagSetKey(canonical: readonly string[]): string {
  return JSON.stringify(canonical);
}

/** Orders canonical tag sets tag by tag, a shorter set before its extensions. */
export function compareTagSets(a: readonly string[], b: readonly string[]): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    if (a[i] !== b[i]) return a[i]! < b[i]! ? -1 : 1;
  }
  return a.length - b.length;
}
