// names.js - user and group names as the contract spells them
// (docs/protocol.md "HTTP API"), cids, avatar colours.

const USER_RE = /^[a-z0-9_.-]{1,32}$/;

export const isUserName = (s) => typeof s === 'string' && USER_RE.test(s);
export const isGroupName = (s) => typeof s === 'string' && s.startsWith('#') && USER_RE.test(s.slice(1));

// A clear reason why a name/password would be refused, or '' when fine.
export function checkUserName(s) {
    if (!s) return 'Enter a user name.';
    if (s.length > 32) return 'A user name has at most 32 characters.';
    if (!USER_RE.test(s)) return 'Use only lower-case letters, digits, "_", "." and "-".';
    return '';
}

export function checkPassword(s) {
    const bytes = new TextEncoder().encode(s || '').length;
    if (bytes < 8) return 'A password has at least 8 characters.';
    if (bytes > 1024) return 'A password has at most 1024 bytes.';
    return '';
}

// "team" or "#team" -> "#team"; '' when not a valid group name.
export function normalizeGroupName(s) {
    const t = String(s || '')
        .trim()
        .toLowerCase();
    const g = t.startsWith('#') ? t : `#${t}`;
    return isGroupName(g) ? g : '';
}

// A client message id (protocol: 1 to 64 chars), unique per user in practice:
// time + 64 random bits.
export function newCid(now = Date.now(), rand = randomHex) {
    return `w${now.toString(36)}-${rand(16)}`;
}

function randomHex(n) {
    const b = new Uint8Array(Math.ceil(n / 2));
    globalThis.crypto.getRandomValues(b);
    return Array.from(b, (x) => x.toString(16).padStart(2, '0'))
        .join('')
        .slice(0, n);
}

// A stable hue for a name (FNV-1a), for avatars.
export function nameHue(name) {
    let h = 0x811c9dc5;
    for (const ch of String(name)) {
        h ^= ch.codePointAt(0);
        h = Math.imul(h, 0x01000193) >>> 0;
    }
    return h % 360;
}

export function initials(name) {
    const s = String(name).replace(/^#/, '');
    const parts = s.split(/[_.-]+/).filter(Boolean);
    if (parts.length >= 2) return (parts[0][0] + parts[1][0]).toUpperCase();
    return s.slice(0, 2).toUpperCase();
}
