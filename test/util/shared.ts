// Where the shared reference data lives: $R1TS_SHARED, <repo>/shared, or <repo>/../shared.
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root (tests run compiled from dist/test/...). */
export const REPO = (() => {
  let d = path.dirname(fileURLToPath(import.meta.url));
  while (!fs.existsSync(path.join(d, 'package.json')) && path.dirname(d) !== d) d = path.dirname(d);
  return d;
})();

export function sharedDir(): string {
  const c = [process.env['R1TS_SHARED'], path.join(REPO, 'shared'), path.join(REPO, '..', 'shared'), path.join(process.cwd(), '..', 'shared')];
  for (const d of c) if (d && fs.existsSync(path.join(d, 'golden'))) return d;
  throw new Error(`shared/golden not found (looked in ${c.filter(Boolean).join(', ')}); set R1TS_SHARED`);
}

export const SHARED = sharedDir();
export const GOLDEN = path.join(SHARED, 'golden');
export const CONFIG_671B = path.join(SHARED, 'configs', 'deepseek-v3-671b.config.json');
