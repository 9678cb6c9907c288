// This machine's arch in the tables' spelling (x86_64, arm64), or undefined on any other.
import os from 'node:os';
import type { Arch } from './table.js';

export function hostArch(): Arch | undefined {
  return os.arch() === 'x64' ? 'x86_64' : os.arch() === 'arm64' ? 'arm64' : undefined;
}
