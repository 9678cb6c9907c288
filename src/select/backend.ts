// Picks the backend a run uses. Today: the Linux kernel through libbpf; `--backend` names one.
import type { Backend, BackendName } from '../../backends/backend.js';
import { WasmBpfError } from '../errors.js';

export type BackendChoice = 'auto' | BackendName;

export const BACKEND_CHOICES: readonly BackendChoice[] = ['auto', 'linux', 'userspace', 'windows'];

export async function createBackend(choice: BackendChoice): Promise<Backend> {
  switch (choice) {
    case 'auto':
    case 'linux': {
      if (process.platform !== 'linux') {
        throw new WasmBpfError('UNSUPPORTED', `the linux backend needs Linux; this is ${process.platform}`);
      }
      const { LinuxBackend } = await import('../../backends/linux/index.js');
      return new LinuxBackend();
    }
    case 'userspace':
    case 'windows':
      throw new WasmBpfError('UNSUPPORTED', `the ${choice} backend is not available in this build yet; use --backend linux`);
  }
}
