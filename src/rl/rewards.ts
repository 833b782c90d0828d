// Rule-based rewards for GRPO (DeepSeek-R1 §2.2.2, §2.3.3), and how to combine them.
//
// A reward is a plain function of one completion:
//
//   type RewardFn = (c: RewardInput) => number | Promise<number>
//
// where RewardInput carries the prompt (ending in "Assistant:"), the completion (the generated
// text, starting with a space: " <think> … </think> <answer> … </answer>"), and what is needed
// to grade it: a reference `answer`, the `task` (when the prompt came from a task suite, its
// verifier decides), and free-form `meta` (GRPO adds meta.completionTokens and meta.truncated;
// code tasks put their tests in meta.tests). Rewards are listed with a name and a weight
// (RewardSpec); the total is Σ weight · reward.
//
// Writing your own: any function of that shape works, sync or async, e.g.
//
//   const short: RewardFn = (c) => (c.completion.length < 400 ? 0.1 : 0);
//   const specs: RewardSpec[] = [
//     { name: 'accuracy', fn: accuracyReward, weight: 1 },
//     { name: 'format', fn: formatReward, weight: 0.5 },
//     { name: 'short', fn: short, weight: 1 },
//   ];
//   const score = combineRewards(specs);
//   const { total, parts } = await score({ prompt, completion, answer: '42' });
//
// Rewards should return a finite number and throw only on misconfiguration (a missing
// reference answer, tests or token count), never because of what the model wrote.
import type { Task } from '../data/tasks.js';
import { getSuite, verifyTask } from '../data/registry.js';
import { extractAnswer, isEquivalent } from '../eval/answer.js';
import { runTests, type SandboxLanguage, type SandboxTest } from './sandbox.js';

/** What a reward function sees: one completion and what is needed to grade it. */
export interface RewardInput {
  /** The prompt text (the template, ending in "Assistant:"). */
  prompt: string;
  /** The generated text (after the prompt; usually starts with a space). */
  completion: string;
  /** A reference answer (compared by mathematical equivalence when there is no task). */
  answer?: string;
  /** The task the prompt came from; its suite's verifier decides correctness. */
  task?: Task;
  /** Anything else: GRPO adds completionTokens (number) and truncated (boolean). */
  meta?: Record<string, unknown>;
}

/** A reward: a function of one completion (sync or async). */
export type RewardFn = (c: RewardInput) => number | Promise<number>;

/** A named, weighted reward. */
export interface RewardSpec {
  name: string;
  fn: RewardFn;
  weight: number;
}

/** One completion's rewards: the weighted total and each reward's unweighted value. */
export interface RewardResult {
  total: number;
  parts: Record<string, number>;
}

// ---------------------------------------------------------------------------------------
// Combining

/**
 * Combine weighted rewards into one scoring function: total = Σ weight · fn(c); parts holds
 * each reward's own (unweighted) value by name. Rewards of one completion run concurrently
 * (async ones, such as the code reward, overlap). Throws if a name repeats, a weight is not
 * finite, or a reward returns a non-finite value.
 */
export function combineRewards(specs: RewardSpec[]): (c: RewardInput) => Promise<RewardResult> {
  const names = new Set<string>();
  for (const s of specs) {
    if (names.has(s.name)) throw new Error(`combineRewards: reward '${s.name}' listed twice`);
    if (!Number.isFinite(s.weight)) throw new Error(`combineRewards: reward '${s.name}' has weight ${s.weight}`);
    names.add(s.name);
  }
  return async (c) => {
    const values = await Promise.all(specs.map(async (s) => {
      const v = await s.fn(c);
      if (typeof v !== 'number' || !Number.isFinite(v)) throw new Error(`reward '${s.name}' returned ${v}`);
      return v;
    }));
    const parts: Record<string, number> = {};
    let total = 0;
    specs.forEach((s, i) => { parts[s.name] = values[i]; total += s.weight * values[i]; });
    return { total, parts };
  };
}

/** Score many completions (all concurrently; the sandbox queues code runs itself). */
export function scoreAll(specs: RewardSpec[], inputs: RewardInput[]): Promise<RewardResult[]> {
  const score = combineRewards(specs);
  return Promise.all(inputs.map(score));
}

// ---------------------------------------------------------------------------------------
// Accuracy

/**
 * 1 if the answer extracted from the completion is correct, else 0.
 *
 * The answer is the text of the last <answer>…</answer>, else of the last \boxed{…}
 * (extractAnswer in src/eval/answer.ts); none → 0. With c.task, the task suite's verifier
 * decides (Countdown accepts any valid expression); otherwise the answer must be
 * mathematically equivalent to c.answer (isEquivalent: "0.5" ≡ "1/2", "x = 5" ≡ "5", …).
 * Throws when the input has neither a task nor a reference answer.
 */
export const accuracyReward: RewardFn = (c) => {
  if (!c.task && c.answer === undefined) throw new Error('accuracyReward: the input needs a task or a reference answer');
  const extracted = extractAnswer(c.completion);
  if (extracted === null || extracted === '') return 0;
  if (c.task) {
    getSuite(c.task.suite); // an unknown suite is a configuration error: let it throw
    try { return verifyTask(c.task, extracted) ? 1 : 0; } catch { return 0; }
  }
  return isEquivalent(extracted, c.answer!) ? 1 : 0;
};

// ---------------------------------------------------------------------------------------
// Format

/** Text with no <think>, </think>, <answer> or </answer> tag in it. */
const TAGLESS = '(?:(?!</?think>|</?answer>)[\\s\\S])*';
const FULL_FORMAT = new RegExp(`^\\s*<think>${TAGLESS}</think>\\s*<answer>${TAGLESS}</answer>\\s*$`);
const PREFILLED_FORMAT = new RegExp(`^${TAGLESS}</think>\\s*<answer>${TAGLESS}</answer>\\s*$`);

export interface FormatOptions {
  /**
   * Whether the prompt already ends with "<think>" (a template that pre-fills it), so the
   * completion starts inside the thinking and must not open it again. 'auto' (the default)
   * decides per input: true when the prompt, trailing whitespace ignored, ends with "<think>".
   */
  prefilledThink?: boolean | 'auto';
}

/**
 * 1 if the completion is `<think>…</think> <answer>…</answer>`: each tag exactly once, in that
 * order, nothing but whitespace before <think>, between </think> and <answer>, and after
 * </answer>; else 0. With a pre-filled "<think>" (see FormatOptions) the completion is
 * `…</think> <answer>…</answer>` with no <think> of its own.
 */
export function makeFormatReward(opts: FormatOptions = {}): RewardFn {
  const mode = opts.prefilledThink ?? 'auto';
  return (c) => {
    const prefilled = mode === 'auto' ? c.prompt.trimEnd().endsWith('<think>') : mode;
    return (prefilled ? PREFILLED_FORMAT : FULL_FORMAT).test(c.completion) ? 1 : 0;
  };
}

/** The format reward with prefilledThink 'auto' (see makeFormatReward). */
export const formatReward: RewardFn = makeFormatReward();

// ---------------------------------------------------------------------------------------
// Language consistency

/**
 * The chain of thought of a completion: the text after the first <think> up to </think> (or
 * up to <answer> / the end when it is not closed); with no <think> but a </think> (a
 * pre-filled template) the text before </think>; null when there is neither.
 */
export function thinkSection(completion: string): string | null {
  const open = completion.indexOf('<think>');
  if (open >= 0) {
    const rest = completion.slice(open + '<think>'.length);
    const end = [rest.indexOf('</think>'), rest.indexOf('<answer>')].filter((i) => i >= 0);
    return end.length ? rest.slice(0, Math.min(...end)) : rest;
  }
  const close = completion.indexOf('</think>');
  return close >= 0 ? completion.slice(0, close) : null;
}

/** Each CJK ideograph or kana is a word; otherwise a word is a run of letters (with marks). */
const WORD = /[\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}]|(?:(?![\p{Script=Han}\p{Script=Hiragana}\p{Script=Katakana}])[\p{L}\p{M}])+/gu;
const HAN = /^\p{Script=Han}$/u;
const LATIN = /^\p{Script=Latin}/u;

/** Count the words of a text by language: zh = CJK ideographs, en = Latin-letter words. */
export function countWords(text: string): { zh: number; en: number; other: number } {
  const n = { zh: 0, en: 0, other: 0 };
  for (const [w] of text.matchAll(WORD)) {
    if (HAN.test(w)) n.zh++;
    else if (LATIN.test(w)) n.en++;
    else n.other++;
  }
  return n;
}

/**
 * Language consistency (DeepSeek-R1 §2.3.3): the share of target-language words in the chain
 * of thought (thinkSection). Words are CJK characters for 'zh' and Latin-letter words for 'en';
 * numbers, symbols and punctuation are not words; words of other scripts count against.
 * No chain of thought, or one without words → 0.
 */
export function languageConsistencyReward(target: 'en' | 'zh'): RewardFn {
  return (c) => {
    const cot = thinkSection(c.completion);
    if (cot === null) return 0;
    const n = countWords(cot);
    const total = n.zh + n.en + n.other;
    return total === 0 ? 0 : n[target] / total;
  };
}

// ---------------------------------------------------------------------------------------
// Length

/**
 * DAPO's overlong reward shaping (soft overlong punishment): with L = meta.completionTokens,
 *   0                         if L ≤ maxLen − cacheLen
 *   (maxLen − cacheLen − L) / cacheLen   if maxLen − cacheLen < L ≤ maxLen   (0 down to −1)
 *   −1                        if L > maxLen
 * a linear penalty over the last cacheLen tokens before the maximum length. Add it with weight
 * 1 next to the accuracy reward. Throws when meta.completionTokens is missing.
 */
export function overlongPenalty(maxLen: number, cacheLen: number): RewardFn {
  if (!(maxLen > 0) || !(cacheLen > 0) || cacheLen > maxLen) {
    throw new Error(`overlongPenalty: need 0 < cacheLen ≤ maxLen (got maxLen=${maxLen}, cacheLen=${cacheLen})`);
  }
  const free = maxLen - cacheLen;
  return (c) => {
    const L = c.meta?.completionTokens;
    if (typeof L !== 'number' || !Number.isFinite(L)) throw new Error('overlongPenalty: meta.completionTokens (a number) is required');
    if (L <= free) return 0;
    if (L <= maxLen) return (free - L) / cacheLen;
    return -1;
  };
}

/** The length reward: DAPO's overlong penalty (see overlongPenalty). */
export const lengthReward = overlongPenalty;

// ---------------------------------------------------------------------------------------
// Code

const FENCE_LANGUAGES: Record<string, SandboxLanguage> = {
  python: 'python', py: 'python', python3: 'python',
  javascript: 'javascript', js: 'javascript', node: 'javascript', mjs: 'javascript', cjs: 'javascript',
};

/**
 * The program of a completion: the last ```python / ```py or ```js / ```javascript fenced block
 * inside the last <answer>…</answer>, else the last such block anywhere. Untagged fences are
 * taken only when `language` is given (they are then assumed to be in it); with `language`
 * given, blocks tagged with another language are skipped. null when there is none.
 */
export function extractCode(text: string, language?: SandboxLanguage): { language: SandboxLanguage; code: string } | null {
  const lastBlock = (s: string) => {
    let found: { language: SandboxLanguage; code: string } | null = null;
    for (const m of s.matchAll(/```[ \t]*([A-Za-z0-9_+-]*)[^\n]*\n([\s\S]*?)```/g)) {
      const tag = m[1].toLowerCase();
      const lang = tag === '' ? language : FENCE_LANGUAGES[tag];
      if (lang === undefined || (language !== undefined && lang !== language)) continue;
      found = { language: lang, code: m[2] };
    }
    return found;
  };
  const answers = [...text.matchAll(/<answer>([\s\S]*?)<\/answer>/g)];
  const inAnswer = answers.length ? lastBlock(answers[answers.length - 1][1]) : null;
  return inAnswer ?? lastBlock(text);
}

export interface CodeRewardOptions {
  /** 'fraction' (default): passed / total tests; 'binary': 1 only if every test passes. */
  mode?: 'fraction' | 'binary';
  /** Per test run (defaults: the sandbox's LIMITS). */
  timeoutMs?: number;
  memoryMb?: number;
}

/**
 * Run the completion's program (extractCode) against tests in the sandbox (src/rl/sandbox.ts);
 * reward = the fraction of tests passed, or 1/0 with mode 'binary'. Tests come from
 * c.meta.tests or c.task.meta.tests: SandboxTest[] — { stdin?, expectedStdout } or
 * { assert: code appended to the program }. The language comes from c.meta.language /
 * c.task.meta.language when set, else from the fence tag. No program → 0. Throws when there
 * are no tests.
 */
export function makeCodeReward(opts: CodeRewardOptions = {}): RewardFn {
  const mode = opts.mode ?? 'fraction';
  return async (c) => {
    const tests = (c.meta?.tests ?? c.task?.meta.tests) as SandboxTest[] | undefined;
    if (!Array.isArray(tests) || tests.length === 0) throw new Error('codeReward: meta.tests (a non-empty list of tests) is required');
    const lang = (c.meta?.language ?? c.task?.meta.language) as SandboxLanguage | undefined;
    if (lang !== undefined && lang !== 'python' && lang !== 'javascript') throw new Error(`codeReward: unsupported language '${lang}'`);
    const program = extractCode(c.completion, lang);
    if (!program) return 0;
    const report = await runTests({
      language: program.language, code: program.code, tests,
      timeoutMs: opts.timeoutMs, memoryMb: opts.memoryMb, stopOnFailure: mode === 'binary',
    });
    return mode === 'binary' ? (report.passed === report.total ? 1 : 0) : report.fraction;
  };
}

/** The code reward with the default options (fraction of tests passed). */
export const codeReward: RewardFn = makeCodeReward();
