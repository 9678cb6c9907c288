// The Windows probe: the commands' outputs (live or recorded) and the ebpfapi.dll file probes, turned into
// Report.windows by the pure ./section.ts. Called by the report builder for Windows hosts and fixtures.
import type { SystemView } from '../system.js';
import { collect } from './commands.js';
import { windowsSection } from './section.js';
import type { WindowsReport } from './types.js';
import { EBPFAPI_PATHS } from '../backends.js';

export type { WindowsReport } from './types.js';

export function probeWindows(sys: SystemView): WindowsReport {
  const { outputs, records } = collect(sys);
  const ebpfapi = EBPFAPI_PATHS.find((p) => {
    try {
      return sys.exists(p);
    } catch {
      return false;
    }
  }) ?? null;
  return windowsSection({ outputs, records, ebpfapi, ebpfapiSearched: EBPFAPI_PATHS }, sys.uname().machine);
}
