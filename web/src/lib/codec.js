// codec.js - one WebSocket binary message <-> one frame (a msgpack map with a
// string `kind`), docs/protocol.md "Transport".
import { decode, encode } from '@msgpack/msgpack';

export function encodeFrame(frame) {
    return encode(frame);
}

// Returns the frame, or null when the bytes are not one msgpack map with a
// string `kind` (the client ignores what it cannot read; it never throws).
export function decodeFrame(bytes) {
    let f;
    try {
        f = decode(bytes instanceof ArrayBuffer ? new Uint8Array(bytes) : bytes);
    } catch {
        return null;
    }
    if (!f || typeof f !== 'object' || Array.isArray(f) || typeof f.kind !== 'string') return null;
    return f;
}
