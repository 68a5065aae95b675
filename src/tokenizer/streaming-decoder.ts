// Decoding tokens as they are generated. A token can end in the middle of a UTF-8 character (byte
// fallback tokens, byte-level BPE pieces of an emoji); those bytes are held back until the next
// token completes them, so the text returned so far never contains a broken character. The
// concatenation of every push() and the final flush() equals decoding all tokens at once.

export class StreamingDecoder {
  // TextDecoder's streaming mode keeps an incomplete trailing sequence for the next call and
  // turns bytes that can never form a character into U+FFFD, exactly as a one-shot decode would.
  // ignoreBOM: a leading U+FEFF is text the user wrote, not a byte order mark to drop.
  private readonly utf8 = new TextDecoder('utf-8', { ignoreBOM: true });
  private atStart: boolean;

  constructor(private readonly piece: (id: number) => Uint8Array, stripLeadingSpace: boolean) {
    this.atStart = stripLeadingSpace;
  }

  /** Adds tokens; returns the text that is complete so far and was not returned before. */
  push(ids: number | readonly number[]): string {
    let text = '';
    for (const id of typeof ids === 'number' ? [ids] : ids) {
      let bytes = this.piece(id);
      if (bytes.length === 0) continue;
      // SentencePiece puts a space before the first word; the first piece that prints anything
      // loses it (llama.cpp strips it from the first token, even one that prints nothing).
      if (this.atStart) {
        this.atStart = false;
        if (bytes[0] === 0x20) bytes = bytes.subarray(1);
      }
      text += this.utf8.decode(bytes, { stream: true });
    }
    return text;
  }

  /** Ends the stream: incomplete bytes still held come out as U+FFFD. */
  flush(): string {
    return this.utf8.decode();
  }
}
