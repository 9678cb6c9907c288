// os-release(5): /etc/os-release, falling back to /usr/lib/os-release. Malformed lines are skipped; a file
// with no usable ID is reported 'unknown' with the reason, never thrown.
import type { DistroInfo } from './types.js';
import { readText, type SystemView } from './system.js';

const LINE = /^([A-Z][A-Z0-9_]*)=(.*)$/;

/** KEY=value pairs; values may be "double", 'single' quoted or bare (with backslash escapes in double quotes). */
export function parseOsRelease(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const m = LINE.exec(line);
    if (!m) continue;
    let v = m[2]!;
    if (v.length >= 2 && v.startsWith('"') && v.endsWith('"')) v = v.slice(1, -1).replace(/\\(["\\`$])/g, '$1');
    else if (v.length >= 2 && v.startsWith("'") && v.endsWith("'")) v = v.slice(1, -1);
    else if (/["'`$\\\s]/.test(v)) continue; // unquoted value with shell syntax: not valid os-release
    // control characters would make the report unprintable
    if (/[\u0000-\u001f]/.test(v)) continue;
    out[m[1]!] = v;
  }
  return out;
}

export function readDistro(sys: SystemView, platform: string): DistroInfo {
  const none = { id: null, versionId: null, codename: null, prettyName: null };
  if (platform !== 'linux') {
    return { ...none, state: 'unknown', reason: `no os-release on ${platform}`, method: 'none' };
  }
  const errs: string[] = [];
  for (const p of ['/etc/os-release', '/usr/lib/os-release']) {
    const r = readText(sys, p);
    if ('error' in r) {
      errs.push(`${p}: ${r.error}`);
      continue;
    }
    const kv = parseOsRelease(r.text);
    const id = kv['ID'];
    if (!id || !/^[a-z0-9._-]+$/.test(id)) {
      return { ...none, state: 'unknown', reason: `${p} is malformed (no valid ID= line)`, method: 'file' };
    }
    return {
      id,
      versionId: kv['VERSION_ID'] ?? null,
      codename: kv['VERSION_CODENAME'] ?? kv['UBUNTU_CODENAME'] ?? null,
      prettyName: kv['PRETTY_NAME'] ?? null,
      state: 'yes',
      reason: p,
      method: 'file',
    };
  }
  return { ...none, state: 'unknown', reason: `no os-release (${errs.join('; ')})`, method: 'file' };
}
