// Data on stdout as bpftool prints it: `-j`/`--json` one line of JSON, `-p`/`--pretty` indented (implies -j).

/** the JSON flags a data command takes, and what they set */
export function jsonFlag(arg: string): 'json' | 'pretty' | undefined {
  if (arg === '-j' || arg === '--json') return 'json';
  if (arg === '-p' || arg === '--pretty') return 'pretty';
  return undefined;
}

/** one line of JSON, or indented with --pretty */
export function formatJson(value: unknown, pretty: boolean): string {
  return `${JSON.stringify(value, null, pretty ? 2 : undefined)}\n`;
}
