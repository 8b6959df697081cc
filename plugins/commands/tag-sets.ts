/** How the commands that list subscriptions (`list`, `listall`) order them. */

/** Orders canonical tag sets tag by tag, a shorter set before its extensions. */
export function compareTagSets(a: readonly string[], b: readonly string[]): number {
  const n = Math.min(a.length, b.length);
  for (let i = 0; i < n; i++) {
    if (a[i] !== b[i]) return a[i]! < b[i]! ? -1 : 1;
  }
  return a.length - b.length;
}
