/** A fixed-capacity ring: the newest `capacity` items, oldest first on read. */
export class Ring<T> {
  readonly #items: T[] = [];
  readonly #capacity: number;
  #next = 0;

  constructor(capacity: number, what: string) {
    if (!(Number.isInteger(capacity) && capacity > 0))
      throw new TypeError(`${what} must be a positive integer`);
    this.#capacity = capacity;
  }

  push(item: T): void {
    if (this.#items.length < this.#capacity) this.#items.push(item);
    else this.#items[this.#next] = item;
    this.#next = (this.#next + 1) % this.#capacity;
  }

  /** Every item, oldest first (the live array while the ring is not yet full: do not mutate). */
  ordered(): readonly T[] {
    return this.#items.length < this.#capacity
      ? this.#items
      : [...this.#items.slice(this.#next), ...this.#items.slice(0, this.#next)];
  }
}
