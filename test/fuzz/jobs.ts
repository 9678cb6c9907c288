// Which mutant a run's index I is: the same bytes in the driver that runs it and in the supervisor that saves it.
import { mutantSeed, Rng } from './rng.js';
import { mutateModule, mutateObject } from './mutators.js';

export type Kind = 'objects' | 'modules';

/** mutant `i` of a run: the same bytes in the driver and in the supervisor that saves it */
export function generate(kind: Kind, seed: number, i: number, inputs: readonly Uint8Array[], names: readonly string[]): { bytes: Uint8Array; input: string; ops: string[] } {
  const r = new Rng(mutantSeed(seed, i));
  const k = r.int(inputs.length);
  const m = kind === 'objects' ? mutateObject(inputs[k]!, r) : mutateModule(inputs[k]!, r);
  return { bytes: m.bytes, input: names[k]!, ops: m.ops };
}

