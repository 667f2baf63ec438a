/** Vitest global setup: runs once before every test file. */
import { ensureSystemPrograms } from './support/systemPackages.js';

export default function setup(): void {
  ensureSystemPrograms();
}
