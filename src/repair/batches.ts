// Reading a long listing (chunk ids, rows) one bounded batch at a time, so a pass holds
// one batch in memory, never the whole listing.

/** Items of `source` in arrays of at most `size`, read as they are consumed. */
export async function* inBatches<T>(source: AsyncIterable<T> | Iterable<T>, size: number): AsyncGenerator<T[]> {
  let batch: T[] = [];
  for await (const item of source) {
    batch.push(item);
    if (batch.length >= size) {
      yield batch;
      batch = [];
    }
  }
  if (batch.length) yield batch;
}
