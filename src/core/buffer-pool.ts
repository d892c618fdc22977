/**
 * A pool of body buffers, so that a process reading a stream of images does not allocate (and
 * V8 collect) one per read.
 *
 * Why: the frontend reads each image it passes on from a node into a buffer of its own. At ~100 KB
 * a read, that memory is outside V8's heap, and V8 answers every 64 MB of it with a full
 * mark-compact of the whole heap; under the hop's uniform load those GCs were a fifth of the
 * frontend's CPU (bench/RESULTS.md). A buffer given back once its answer is written is taken by
 * the next read instead.
 *
 * Giving back is the caller's promise that nothing holds the buffer any more; a buffer never
 * given back is simply collected. Only buffers this pool made are taken back, once each. Sizes
 * fall into 8 classes per power of two (a buffer holds at most 1/8 more than was asked),
 * and the pool keeps at most `maxBytes` idle.
 */
export interface BufferPoolOptions {
  /** Idle bytes kept at most; what is given back beyond it is left to the GC. */
  maxBytes?: number;
  /** Smaller bodies are not pooled (Node's own pool serves small allocations). */
  minLength?: number;
  /** Larger bodies are not pooled: rare, and each would take much of the budget. */
  maxLength?: number;
}

/** The capacity of `length`'s class: rounded up to a sixteenth of the power of two above it. */
export function classOf(length: number): number {
  const step = 2 ** Math.max(0, Math.ceil(Math.log2(length)) - 4);
  return Math.ceil(length / step) * step;
}

/**
 * What a pool notes on memory it made (properties rather than WeakSets: a read takes and gives
 * back a buffer, and two WeakSet updates each time were a measurable part of the hop).
 */
interface PoolMemory extends ArrayBuffer {
  /** Made by a pool: a buffer in it holds its whole class, not only its length. */
  [MADE]?: true;
  /** The pool it is out from, with a reader; undefined while idle. */
  [OUT]?: object | undefined;
}
const MADE = Symbol('pixpool.pooled');
const OUT = Symbol('pixpool.out');

/** The bytes of memory `buffer` keeps alive, for those who budget by it (the near cache). */
export function memoryOf(buffer: Buffer): number {
  return (buffer.buffer as PoolMemory)[MADE] ? buffer.buffer.byteLength : buffer.length;
}

export function createBufferPool(options: BufferPoolOptions = {}) {
  const { maxBytes = 8 * 1024 * 1024, minLength = 16 * 1024, maxLength = 1024 * 1024 } = options;
  const idle = new Map<number, PoolMemory[]>();
  let idleBytes = 0;

  const pool = {
    /** A buffer of exactly `length` bytes, contents undefined (as Buffer.allocUnsafe). */
    take(length: number): Buffer {
      if (length < minLength || length > maxLength) return Buffer.allocUnsafe(length);
      const capacity = classOf(length);
      let memory = idle.get(capacity)?.pop();
      if (memory) idleBytes -= capacity;
      else {
        memory = new ArrayBuffer(capacity) as PoolMemory;
        memory[MADE] = true;
      }
      // What it will take back: memory it made that is out with a reader.
      memory[OUT] = pool;
      return Buffer.from(memory, 0, length);
    },

    /** Takes back a buffer from take() that nothing holds any more; anything else is ignored. */
    give(buffer: Buffer): void {
      const memory = buffer.buffer as PoolMemory;
      if (memory[OUT] !== pool || buffer.byteOffset !== 0) return;
      memory[OUT] = undefined;
      if (idleBytes + memory.byteLength > maxBytes) return;
      let list = idle.get(memory.byteLength);
      if (!list) {
        list = [];
        idle.set(memory.byteLength, list);
      }
      list.push(memory);
      idleBytes += memory.byteLength;
    },

    /** Bytes kept idle now. */
    get idleBytes() {
      return idleBytes;
    },
  };
  return pool;
}

export type BufferPool = ReturnType<typeof createBufferPool>;
