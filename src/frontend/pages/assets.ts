/**
 * The pages' static files, served from /assets/<name>: the page scripts in ./assets/ plus the
 * look every pixpool UI shares (app.css, icon.svg, from src/http/web/assets/). Loading, content
 * hashing, caching and ETags are the shared asset set's (src/http/web/asset-set.ts).
 */
import { createAssetSet } from '../../http/web/asset-set.ts';

export const pageAssets = createAssetSet(new URL('./assets/', import.meta.url), '/assets/');
