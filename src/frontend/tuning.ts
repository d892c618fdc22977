/**
 * The frontend's tuning flags, shared by `pixpool frontend` and `pixpool up` (which runs one). Kept
 * apart from main.ts so that the CLI can read them without loading the frontend.
 */

export interface FrontendTuning {
  maxUploadMb: number;
  /** MB of hot images this frontend keeps (default 64; 0 turns the near cache off). */
  nearCacheMb?: number | undefined;
  /** Seconds between orphan-object sweeps (default 600; 0 turns them off). */
  gcIntervalS?: number | undefined;
  /** Seconds an unreferenced object is spared, as an upload may be in flight (default 3600). */
  gcGraceS?: number | undefined;
  /** Widths and heights image variants may have (variants/spec.ts's by default). */
  variantSizes?: number[] | undefined;
  /** Largest original a variant is made of, pixels (default 50 million). */
  variantMaxPixels?: number | undefined;
  /** Variants made at once (default: one per core). */
  variantConcurrency?: number | undefined;
}

/** The frontend's tuning out of a larger set of options (the CLI's, `pixpool up`'s). */
export const frontendTuning = (o: FrontendTuning): FrontendTuning => ({
  maxUploadMb: o.maxUploadMb,
  nearCacheMb: o.nearCacheMb,
  gcIntervalS: o.gcIntervalS,
  gcGraceS: o.gcGraceS,
  variantSizes: o.variantSizes,
  variantMaxPixels: o.variantMaxPixels,
  variantConcurrency: o.variantConcurrency,
});
