// mentions.js - `@name` in message text, as the contract reads it
// (docs/protocol.md "Message lifecycle", Mentions): `@` not preceded by a
// name character, then the longest run of name characters (a-z 0-9 _ . -);
// when that run is not a participant, trailing `.`, `-`, `_` are dropped and
// it is tried again. The server decides a text's `mentions`; the client uses
// the same reading to highlight them in message text and to complete a name
// being typed after `@` in the composer. Pure functions, no DOM.

const NAME_CHAR = /[a-z0-9_.-]/;
const RUN = /^[a-z0-9_.-]+/;
// at most this many `@` candidates per text are looked at (the server's bound)
export const MAX_CANDIDATES = 64;

// Every mention in text: [{start, end, name}] (end exclusive, covering `@name`),
// in order. isName(name) says whether a name is a participant.
export function findMentions(text, isName) {
    const out = [];
    if (typeof text !== 'string') return out;
    let looked = 0;
    for (let i = text.indexOf('@'); i >= 0 && looked < MAX_CANDIDATES; i = text.indexOf('@', i + 1)) {
        if (i > 0 && NAME_CHAR.test(text[i - 1])) continue;
        const m = RUN.exec(text.slice(i + 1));
        if (!m) continue;
        looked++;
        let name = m[0];
        if (!isName(name)) name = name.replace(/[._-]+$/, '');
        if (name && isName(name)) out.push({ start: i, end: i + 1 + name.length, name });
    }
    return out;
}

// The names text mentions (each once, in order of first mention).
export function mentionedNames(text, isName) {
    return [...new Set(findMentions(text, isName).map((m) => m.name))];
}

// text cut into [{text}] and [{text, mention: name}] parts, for rendering with
// the mentions highlighted.
export function mentionSpans(text, isName) {
    const parts = [];
    let at = 0;
    for (const m of findMentions(text, isName)) {
        if (m.start > at) parts.push({ text: text.slice(at, m.start) });
        parts.push({ text: text.slice(m.start, m.end), mention: m.name });
        at = m.end;
    }
    if (at < (text || '').length) parts.push({ text: text.slice(at) });
    return parts;
}

// The `@prefix` being typed just before the caret, for completion:
// {start (index of the `@`), prefix} or null (the caret is not right after
// `@` + name characters, or that `@` follows a name character).
export function mentionQuery(text, caret) {
    if (typeof text !== 'string') return null;
    let i = Math.min(caret ?? text.length, text.length);
    const end = i;
    while (i > 0 && NAME_CHAR.test(text[i - 1])) i--;
    if (i === 0 || text[i - 1] !== '@') return null;
    const at = i - 1;
    if (at > 0 && NAME_CHAR.test(text[at - 1])) return null;
    return { start: at, prefix: text.slice(i, end) };
}

// Candidates for a prefix: names starting with it, sorted, at most `max`.
export function completions(prefix, names, max = 8) {
    const p = String(prefix || '').toLowerCase();
    return [...new Set(names)]
        .filter((n) => n.startsWith(p))
        .sort()
        .slice(0, max);
}

// The text with the `@prefix` before the caret replaced by `@name ` and the
// caret after it: {text, caret}. Unchanged when no query is at the caret.
export function completeMention(text, caret, name) {
    const q = mentionQuery(text, caret);
    if (!q) return { text, caret };
    const end = q.start + 1 + q.prefix.length;
    const rest = text.slice(end);
    const insert = `@${name}${rest.startsWith(' ') ? '' : ' '}`;
    return { text: text.slice(0, q.start) + insert + rest, caret: q.start + insert.length + (rest.startsWith(' ') ? 1 : 0) };
}
