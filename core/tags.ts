/** Tag-set helpers shared by the broker and the cluster. */

/** The canonical form of a tag set: distinct tags, sorted. `["b","a","a"]` → `["a","b"]`. */
export function canonicalTags(tags: readonly string[]): string[] {
  return [...new Set(tags)].sort();
}

/** A string that names a canonical tag set, usable as a map key. */
export function tagSetKey(canonical: readonly string[]): string {
  return JSON.stringify(canonical);
}


/** Whether every tag of `subscription` is among `tags`: a message tagged `tags` matches it. For the rare checks of one set; matching many is the matcher's work. */
export function covers(tags: readonly string[], subscription: readonly string[]): boolean {
  return subscription.every((tag) => tags.includes(tag));
}
