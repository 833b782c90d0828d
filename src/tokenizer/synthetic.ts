// A generated English + arithmetic corpus for training and timing tokenizers without any
// download: Zipf-distributed words (a fixed list of common words plus made-up ones built from
// syllables, so the vocabulary is open like real text), punctuation, and worked arithmetic
// in the R1 format (<think> … </think> <answer> … </answer>). Deterministic for a seed.

const COMMON = (
  'the of and to a in is it you that he was for on are with as I his they be at one have this from or had by ' +
  'not word but what some we can out other were all there when up use your how said an each she which do their ' +
  'time if will way about many then them write would like so these her long make thing see him two has look more ' +
  'day could go come did number sound no most people my over know water than call first who may down side been now ' +
  'find any new work part take get place made live where after back little only round man year came show every ' +
  'good me give our under name very through just form sentence great think say help low line differ turn cause much ' +
  'mean before move right boy old too same tell does set three want air well also play small end put home read hand ' +
  'port large spell add even land here must big high such follow act why ask men change went light kind off need ' +
  'house picture try us again animal point mother world near build self earth father head stand own page should ' +
  'country found answer school grow study still learn plant cover food sun four between state keep eye never last ' +
  'let thought city tree cross farm hard start might story saw far sea draw left late run while press close night ' +
  'real life few north wait check therefore so problem solve equation sum product result step'
).split(' ');
const SYLLABLES = 'ka to mi ra ne so lu vi den mar tel bor qui zan phe stro ing ent ion ous ly er al ic ful ness'.split(' ');

/** A small seeded PRNG (mulberry32). */
export function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Yields documents (a few hundred characters each) until about `totalChars` characters. */
export function* syntheticCorpus(totalChars: number, seed = 1): Generator<string> {
  const rnd = mulberry32(seed);
  const int = (n: number) => Math.floor(rnd() * n);
  // 20k made-up words, drawn with a Zipf-like law together with the common ones.
  const made: string[] = [];
  for (let i = 0; i < 20000; i++) {
    let w = '';
    const n = 2 + int(3);
    for (let j = 0; j < n; j++) w += SYLLABLES[int(SYLLABLES.length)];
    made.push(w);
  }
  const word = () => {
    if (rnd() < 0.8) return COMMON[Math.floor(COMMON.length * rnd() ** 2.5)]!;
    return made[Math.floor(made.length * rnd() ** 3)]!;
  };
  const sentence = () => {
    const n = 4 + int(14);
    const ws: string[] = [];
    for (let i = 0; i < n; i++) ws.push(word());
    ws[0] = ws[0]![0]!.toUpperCase() + ws[0]!.slice(1);
    if (rnd() < 0.2) ws[int(n)] += ',';
    return ws.join(' ') + (rnd() < 0.9 ? '.' : rnd() < 0.5 ? '?' : '!');
  };
  const arithmetic = () => {
    const a = int(1000), b = int(1000);
    const op = ['+', '-', '*'][int(3)]!;
    const r = op === '+' ? a + b : op === '-' ? a - b : a * b;
    const wrong = rnd() < 0.2;
    const shown = wrong ? r + 1 + int(9) : r;
    let think = `${a} ${op} ${b} = ${shown}.`;
    if (wrong) think += ` Wait, let me check again. ${a} ${op} ${b} = ${r}.`;
    return `Question: What is ${a} ${op} ${b}?\nAnswer: <think> ${think} </think> <answer> ${r} </answer>`;
  };
  let produced = 0;
  while (produced < totalChars) {
    const parts: string[] = [];
    const n = 2 + int(6);
    for (let i = 0; i < n; i++) parts.push(rnd() < 0.3 ? arithmetic() : sentence());
    const doc = parts.join(rnd() < 0.5 ? ' ' : '\n');
    produced += doc.length;
    yield doc;
  }
}
