// rawhttp.mjs: HTTP requests written byte for byte on a raw socket, so a test
// sees exactly what the gateway answers (or that it answered nothing), with
// headers node's http client would add, refuse or normalise (Origin, Host,
// odd Content-Types, an upgrade that must not be completed).
import net from 'node:net';

// The headers of a WebSocket upgrade request (RFC 6455, 4.1; the key is the
// RFC's example): the gateway answers 101 or refuses with a JSON error.
export const UPGRADE = {
    Upgrade: 'websocket',
    Connection: 'Upgrade',
    'Sec-WebSocket-Key': 'dGhlIHNhbXBsZSBub25jZQ==',
    'Sec-WebSocket-Version': '13',
};

// One request on a fresh socket to 127.0.0.1:port (Host: 127.0.0.1:port unless
// headers name another): {status, headers, text, body} once the
// answer (headers and Content-Length bytes) is in, or {status: null, closed}
// when the connection ended without an answer.
export function rawRequest(port, method, target, { headers = {}, body = '' } = {}) {
    const all = { Host: `127.0.0.1:${port}`, ...headers };
    if (!all.Connection) all.Connection = 'close';
    if (body) all['Content-Length'] = String(Buffer.byteLength(body));
    const head = `${method} ${target} HTTP/1.1\r\n${Object.entries(all)
        .map(([k, v]) => `${k}: ${v}\r\n`)
        .join('')}\r\n`;
    return new Promise((resolve) => {
        const s = net.connect(port, '127.0.0.1');
        let buf = Buffer.alloc(0);
        let ended = null;
        let done = false;
        const finish = (r) => {
            if (done) return;
            done = true;
            s.destroy();
            resolve(r);
        };
        const parse = () => {
            const text = buf.toString('latin1');
            const i = text.indexOf('\r\n\r\n');
            if (i < 0) return null;
            const lines = text.slice(0, i).split('\r\n');
            const hdrs = {};
            for (const l of lines.slice(1)) {
                const k = l.indexOf(':');
                hdrs[l.slice(0, k).trim().toLowerCase()] = l.slice(k + 1).trim();
            }
            const rest = buf.subarray(i + 4);
            const len = hdrs['content-length'] === undefined ? null : Number(hdrs['content-length']);
            if (len !== null && rest.length < len) return null;
            const t = rest.toString('utf8');
            let json;
            try {
                json = JSON.parse(t);
            } catch {
                json = null;
            }
            return { status: Number(lines[0].split(' ')[1]), headers: hdrs, text: t, body: json };
        };
        s.setTimeout(5000, () => finish({ status: null, closed: 'no answer within 5 s' }));
        s.on('data', (d) => {
            buf = Buffer.concat([buf, d]);
            const r = parse();
            if (r) finish(r);
        });
        s.on('error', (e) => (ended = e.code || e.message));
        s.on('close', () => finish(parse() || { status: null, closed: ended || 'eof', got: buf.length }));
        s.write(head + body);
    });
}
