// GPT-2's byte-to-unicode table: every byte 0..255 gets one printable character, so a
// byte-level BPE works on ordinary strings. Printable Latin-1 bytes ('!'..'~', '¡'..'¬',
// '®'..'ÿ') map to themselves; the other 68 bytes map to U+0100.. in byte order
// (so ' ' → 'Ġ', '\n' → 'Ċ'). The same table as the `tokenizers` library's ByteLevel.

/** BYTE_TO_CHAR[b]: the character standing for byte b. */
export const BYTE_TO_CHAR: readonly string[] = (() => {
  const printable = (b: number) => (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
  const out = new Array<string>(256);
  let n = 0;
  for (let b = 0; b < 256; b++) out[b] = String.fromCharCode(printable(b) ? b : 256 + n++);
  return out;
})();

/** CHAR_TO_BYTE: the inverse of BYTE_TO_CHAR. */
export const CHAR_TO_BYTE: ReadonlyMap<string, number> = new Map(BYTE_TO_CHAR.map((c, b) => [c, b]));

/**
 * The 256 bytes in the order a byte-level vocabulary lists them: sorted by their character
 * (the order `tokenizers`' BpeTrainer gives its initial alphabet, so '!' comes first).
 */
export const BYTES_IN_VOCAB_ORDER: readonly number[] = Array.from({ length: 256 }, (_, b) => b).sort(
  (a, b) => BYTE_TO_CHAR[a]!.charCodeAt(0) - BYTE_TO_CHAR[b]!.charCodeAt(0),
);

const utf8 = new TextEncoder();

/** Text → its byte-level string (one character per UTF-8 byte). */
export function toByteLevel(text: string): string {
  const bytes = utf8.encode(text);
  let s = '';
  for (let i = 0; i < bytes.length; i++) s += BYTE_TO_CHAR[bytes[i]!];
  return s;
}

/** Byte-level string → bytes (throws on a character outside the table). */
export function fromByteLevel(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) {
    const b = CHAR_TO_BYTE.get(s[i]!);
    if (b === undefined) throw new Error(`not a byte-level character: ${JSON.stringify(s[i])}`);
    out[i] = b;
  }
  return out;
}
