// prefs.js - what this browser remembers per user beyond the session: the
// muted conversations (no notification, a quiet badge), kept in
// localStorage under `parley:muted:NAME` as a JSON list of conversation
// keys. storage is injectable (tests); a storage that throws (private mode,
// quota) is treated as empty and writes are dropped.

const keyFor = (me) => `parley:muted:${me}`;

export function loadMuted(me, storage = globalThis.localStorage) {
    if (!me || !storage) return [];
    try {
        const v = JSON.parse(storage.getItem(keyFor(me)) || '[]');
        return Array.isArray(v) ? v.filter((k) => typeof k === 'string') : [];
    } catch {
        return [];
    }
}

export function saveMuted(me, keys, storage = globalThis.localStorage) {
    if (!me || !storage) return;
    try {
        storage.setItem(keyFor(me), JSON.stringify([...new Set(keys)].sort()));
    } catch {
        // not kept: the mute lasts for this page only
    }
}
