// Chat templates: Hugging Face Jinja templates rendered with @huggingface/jinja, and the
// R1-Zero prompt from the DeepSeek-R1 paper (Table 1), both as a function and as a template.

import { Template } from '@huggingface/jinja';

export interface ChatMessage {
  role: 'system' | 'user' | 'assistant' | 'tool' | (string & {});
  content: string;
  [key: string]: unknown;
}

export interface ChatTemplateOptions {
  /** End with the opening of an assistant turn (default false). */
  addGenerationPrompt?: boolean;
  /** Variables the template may read besides messages (tools, documents, …). */
  extra?: Record<string, unknown>;
}

/** The R1-Zero instruction (DeepSeek-R1 paper, Table 1), before "User: …". */
export const R1_ZERO_INSTRUCTION =
  'A conversation between User and Assistant. The user asks a question, and the Assistant solves it. ' +
  'The assistant first thinks about the reasoning process in the mind and then provides the user with the answer. ' +
  'The reasoning process and answer are enclosed within <think> </think> and <answer> </answer> tags, respectively, ' +
  'i.e., <think> reasoning process here </think> <answer> answer here </answer>.';

/** The R1-Zero prompt for one question: "…</answer>. User: {question}. Assistant:" */
export function r1ZeroPrompt(question: string): string {
  return `${R1_ZERO_INSTRUCTION} User: ${question}. Assistant:`;
}

/**
 * The R1-Zero prompt as a Jinja chat template. One user message renders exactly as
 * r1ZeroPrompt(content); a leading system message replaces the instruction; each assistant
 * turn is " {content}" followed by eos_token when one is defined; later user turns continue
 * as " User: {content}. Assistant:". The "Assistant:" cue is part of every user turn, so
 * add_generation_prompt changes nothing.
 */
export const R1_ZERO_CHAT_TEMPLATE =
  "{%- if messages[0]['role'] == 'system' -%}" +
  "{%- set instruction = messages[0]['content'] -%}{%- set turns = messages[1:] -%}" +
  '{%- else -%}' +
  `{%- set instruction = ${JSON.stringify(R1_ZERO_INSTRUCTION).replace(/^"|"$/g, "'")} -%}{%- set turns = messages -%}` +
  '{%- endif -%}' +
  '{{- instruction -}}' +
  '{%- for message in turns -%}' +
  "{%- if message['role'] == 'user' -%}{{- ' User: ' + message['content'] + '. Assistant:' -}}" +
  "{%- elif message['role'] == 'assistant' -%}{{- ' ' + message['content'] -}}" +
  '{%- if eos_token is defined and eos_token -%}{{- eos_token -}}{%- endif -%}' +
  '{%- endif -%}' +
  '{%- endfor -%}';

/** A ChatML template (Qwen2 style, without tools), for tokenizers of our own that have <|im_start|>/<|im_end|>. */
export const CHATML_CHAT_TEMPLATE =
  "{%- for message in messages -%}{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n' -}}{%- endfor -%}" +
  "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}";

const parsed = new Map<string, Template>();

/** Renders a Jinja chat template the way transformers' apply_chat_template does (tokenize=False). */
export function renderChatTemplate(
  template: string,
  messages: readonly ChatMessage[],
  opts: ChatTemplateOptions & { specialTokens?: Record<string, string | null | undefined> } = {},
): string {
  let t = parsed.get(template);
  if (!t) {
    t = new Template(template);
    if (parsed.size > 32) parsed.clear();
    parsed.set(template, t);
  }
  const ctx: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(opts.specialTokens ?? {})) if (v !== null && v !== undefined) ctx[k] = v;
  Object.assign(ctx, opts.extra ?? {});
  ctx['messages'] = messages;
  ctx['add_generation_prompt'] = opts.addGenerationPrompt ?? false;
  return t.render(ctx);
}
