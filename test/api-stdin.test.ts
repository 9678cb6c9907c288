// The library API's `stdin` option (as the Rust runtime's Config.stdin): the guest's fd 0 from the
// embedder's bytes or string, or nothing ('ignore'), instead of the embedder's own stdin.
import t from 'tap';
import path from 'node:path';
import { BUILD, FIXTURES, ROOT, buildGuest } from './helpers.js';

const guest = buildGuest(path.join(FIXTURES, 'stdin-cat.c'), path.join(BUILD, 'stdin-cat.wasm'));

async function cat(stdin: 'ignore' | Uint8Array | string): Promise<{ stdout: string; code: number }> {
  const api = (await import(path.join(ROOT, 'dist', 'src', 'index.js'))) as typeof import('../src/index.js');
  const app = api.run(guest, { stdin });
  let stdout = '';
  app.stdout!.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  app.stderr!.resume();
  const code = await app.exit;
  return { stdout, code };
}

t.test('stdin: a string, bytes, or nothing', async (t) => {
  const text = await cat('hello\nwörld\n');
  t.equal(text.code, 7);
  t.equal(text.stdout, 'hello\nwörld\nread=13 eof=1\n', 'a string: its UTF-8 bytes, then end of file');
  const big = Buffer.alloc(100_000, 'x');
  const bytes = await cat(new Uint8Array(big));
  t.match(bytes.stdout, /read=100000 eof=1\n$/, 'bytes, read in many pieces');
  t.equal(bytes.stdout.split('x').length - 1, 100_000);
  const none = await cat('ignore');
  t.equal(none.stdout, 'read=0 eof=1\n', "'ignore': end of file at once (never this process's stdin)");
});

t.test('stdin: anything else is a usage error', async (t) => {
  const api = (await import(path.join(ROOT, 'dist', 'src', 'index.js'))) as typeof import('../src/index.js');
  await t.rejects(async () => api.run(guest, { stdin: 42 as unknown as string }).exit, { code: 'USAGE' });
});
