// The Windows part of the probe report (Report.windows, present on Windows hosts and Windows fixtures):
// the OS build, the arch, eBPF for Windows' install (version, services, ebpfapi.dll), JIT or native-only,
// and the program and map types it offers. Same tri-state checks as the rest of the report.
import type { Check } from '../types.js';

/** one Windows service as `sc query NAME` shows it */
export interface ServiceCheck extends Check {
  /** null: the query could not be run */
  installed: boolean | null;
  /** 'RUNNING', 'STOPPED', 'START_PENDING', ...; null when not installed or unknown */
  status: string | null;
  /** 'KERNEL_DRIVER', 'WIN32_OWN_PROCESS', ... */
  type: string | null;
}

export type WindowsService = 'ebpfcore' | 'netebpfext' | 'ebpfsvc';

/** a command the Windows probe runs (live) or reads recorded (fixture: ROOT/commands/ID.txt) */
export interface CommandRecord {
  id: string;
  argv: string[];
  /** its output was read */
  read: boolean;
  error?: string;
}

export interface WindowsReport {
  /** Windows 11 (build 22000+) or Windows Server 2022 (build 20348+): what eBPF for Windows supports */
  os: Check & { productName: string | null; build: number | null; ubr: number | null; displayVersion: string | null; edition: string | null };
  /** PROCESSOR_ARCHITECTURE: AMD64 (x64) or ARM64 */
  arch: Check & { processorArchitecture: string | null; normalized: string };
  /** eBPF for Windows installed and running: its version (the MSI's uninstall entry), ebpfapi.dll, its services */
  ebpf: Check & { version: string | null; installDir: string | null; ebpfapi: string | null; services: Record<WindowsService, ServiceCheck> };
  /** 'jit': the eBPF service (ebpfsvc, verification and JIT) is installed; 'native-only': only signed native images (.sys from bpf2c) load */
  execution: Check & { mode: 'jit' | 'native-only' | null };
  /** program types registered by extensions (HKLM\SOFTWARE\eBPF\Providers\ProgramData), by eBPF for Windows' names */
  progTypes: Record<string, Check & { id: number; guid: string | null }>;
  /** map types of the eBPF for Windows core (numbers of include/ebpf_structs.h) */
  mapTypes: Record<string, Check & { id: number }>;
  /** every command the probe ran or read */
  commands: CommandRecord[];
}
