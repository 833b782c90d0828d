// The R1-Zero prompt template (DeepSeek-R1 paper, Table 1), verbatim but for {question}.
//
// Convention used throughout src/data: a *prompt* is the template text ending in "Assistant:"
// (no trailing space) and a *response* starts with a space: " <think> … </think> <answer> …
// </answer>". A training document is exactly prompt + response; at generation time the model
// is given the prompt and produces the response. Questions carry no trailing punctuation
// ("Compute 47 + 38"), since the template itself appends ". Assistant:".

export const R1_ZERO_TEMPLATE =
  'A conversation between User and Assistant. The user asks a question, and the Assistant solves it. ' +
  'The assistant first thinks about the reasoning process in the mind and then provides the user with the answer. ' +
  'The reasoning process and answer are enclosed within <think> </think> and <answer> </answer> tags, respectively, ' +
  'i.e., <think> reasoning process here </think> <answer> answer here </answer>. User: {question}. Assistant:';

/** The R1-Zero prompt for a question. */
export function r1ZeroPrompt(question: string): string {
  return R1_ZERO_TEMPLATE.replace('{question}', question);
}

/** A short prompt ("User: {question}. Assistant:") for character-level models with tight contexts. */
export function compactPrompt(question: string): string {
  return `User: ${question}. Assistant:`;
}

/** 'raw': the text is already the whole prompt (a dataset written with its own template). */
export type PromptStyle = 'r1-zero' | 'compact' | 'raw';

export function formatPrompt(question: string, style: PromptStyle = 'r1-zero'): string {
  return style === 'compact' ? compactPrompt(question) : style === 'raw' ? question : r1ZeroPrompt(question);
}

/** A well-formed response: " <think> {think} </think> <answer> {answer} </answer>". */
export function formatResponse(think: string, answer: string): string {
  return ` <think> ${think} </think> <answer> ${answer} </answer>`;
}

/** Strict format check: optional leading whitespace, one think block, then one answer block. */
export function isWellFormatted(response: string): boolean {
  return /^\s*<think>(?:(?!<\/?think>|<\/?answer>)[\s\S])*<\/think>\s*<answer>(?:(?!<\/?think>|<\/?answer>)[\s\S])*<\/answer>\s*$/.test(response);
}

/** The text inside the last <answer>…</answer>, trimmed; null if there is none. */
export function extractAnswer(response: string): string | null {
  const all = [...response.matchAll(/<answer>([\s\S]*?)<\/answer>/g)];
  return all.length ? all[all.length - 1][1].trim() : null;
}
