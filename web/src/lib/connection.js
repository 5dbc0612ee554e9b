// connection.js - the one WebSocket of a signed-in page: connect, reconnect
// with backoff, recover, send. It owns no state of its own beyond the socket
// and timers: every frame goes through store.js's reducer (dispatch), and
// every decision it takes reads the store (getState).
//
// Life of a connection:
//   connect -> (upgrade; the parley_token cookie authenticates it) -> hello
//   -> sync {after, epoch} when this page already had an inbox position
//   -> re-send every unacknowledged message with its cid -> live.
//   close -> banner "reconnecting in N s" -> backoff (createBackoff) -> again.
// A connection that closes before hello may mean the session expired: the
// page asks GET /api/users (authenticated) and, on 401, signs out instead of
// retrying. Close 4001 means this session was revoked (logged out here or
// elsewhere, revoked from the sessions list, "log out everywhere", a password
// change on another device): the page signs out at once, no reconnect. The
// one 4001 that is expected is this page's own password change (renew):
// the server revokes the old token and the page goes on with the new cookie.
// Close 1012 (the inbox epoch changed) is handled by hello: the store
// notices the new epoch and the UI reloads conversations via history.
//
// The WebSocket URL carries no token: the upgrade is authenticated by the
// parley_token cookie (HttpOnly), and the scheme follows the page's (wss
// on an https page).
//
// Errors without a cid are tied, where they can be, to what asked for them
// (so the store can say what failed): a group change this page sent (every
// one is answered, by a `group` frame or an error, in order), else a typing
// notice sent just before (refused by a peer who blocks this user: shown as
// nothing), else a history request.
//
// Edits, deletes and reactions (sendOp) carry a cid of their own and are
// handled like texts: kept in the store's `ops` until their ack, timed out,
// re-sent with the same cid after a reconnect (the server answers a known
// cid with the same ack and changes nothing twice).
//
// onFrame(frame, before, after), when given, sees every server frame after
// the store took it (the page's notifications).
//
// History requests are answered in order on a socket, so the kind of each
// outstanding request ('initial', 'older', 'preview') is kept in a FIFO per
// conversation; background preview fetches are paced (previewRate per second)
// to stay far below the gateway's per-socket rate limit.
import { createBackoff } from './backoff.js';
import { decodeFrame, encodeFrame } from './codec.js';
import { newCid } from './names.js';
import { reduce, resendList, resendOps, syncFrame } from './store.js';

export const ACK_TIMEOUT_MS = 10000;
// the gateway's default --max-frame is 64 KiB for the whole frame
export const MAX_TEXT_BYTES = 60000;
export const HEALTHY_AFTER_MS = 10000; // a connection up this long resets the backoff
export const CLOSE_REVOKED = 4001; // the server revoked this session
const TYPING_EVERY_MS = 2500;
const OP_ANSWER_MS = 15000; // a group change unanswered this long is forgotten
const TYPING_ERROR_MS = 5000; // an error this soon after a typing notice may answer it

export function wsUrl(loc = globalThis.location) {
    return `${loc.protocol === 'https:' ? 'wss:' : 'ws:'}//${loc.host}/ws`;
}

export class Connection {
    // opts: url, dispatch(ev), getState(), onSignedOut(reason) (reason:
    // 'expired' | 'revoked'), WebSocket, fetch, now(), backoff, previewRate
    constructor(opts) {
        this.o = {
            WebSocket: globalThis.WebSocket,
            fetch: (...a) => globalThis.fetch(...a),
            now: () => Date.now(),
            previewRate: 10,
            ...opts,
        };
        this.backoff = this.o.backoff || createBackoff();
        this.ws = null;
        this.stopped = false;
        this.helloAt = 0;
        this.retryTimer = null;
        this.ackTimers = new Map();
        this.history = new Map(); // key -> FIFO of modes
        this.previewQueue = [];
        this.previewTimer = null;
        this.lastTyping = new Map();
        this.typingSent = null; // {to, at}: the newest typing notice sent
        this.groupOps = []; // FIFO of {op, name, at}: group changes awaiting their answer
        this.renewing = null; // promise of a password change in flight (see renew)
        this.features = { history: true, read: true, group: true, block: true, edit: true, delete: true, react: true };
        this.lastBlock = null; // {user, on}: the newest block change sent
    }

    get open() {
        return !!this.ws && this.ws.readyState === 1 && this.helloAt > 0;
    }

    dispatch(ev) {
        this.o.dispatch(ev);
    }

    start() {
        this.stopped = false;
        this._connect();
    }

    stop() {
        this.stopped = true;
        clearTimeout(this.retryTimer);
        clearTimeout(this.previewTimer);
        for (const t of this.ackTimers.values()) clearTimeout(t);
        this.ackTimers.clear();
        if (this.ws) {
            const ws = this.ws;
            this.ws = null;
            ws.onclose = ws.onmessage = ws.onerror = null;
            try {
                ws.close(1000, 'bye');
            } catch {
                // already closing or closed: nothing left to stop
            }
        }
    }

    // Reconnect now (the banner's "retry now", the browser's `online` event).
    retryNow() {
        if (this.stopped || (this.ws && this.ws.readyState <= 1)) return;
        clearTimeout(this.retryTimer);
        this._connect();
    }

    _connect() {
        const attempt = this.backoff.attempt;
        this.dispatch({ type: 'conn', conn: { status: attempt ? 'reconnecting' : 'connecting', retryAt: 0, attempt } });
        let ws;
        try {
            ws = new this.o.WebSocket(this.o.url);
        } catch (e) {
            this._closed(null, { code: 1006, reason: String(e) });
            return;
        }
        ws.binaryType = 'arraybuffer';
        this.ws = ws;
        this.helloAt = 0;
        this.history.clear();
        this.groupOps = [];
        this.typingSent = null;
        ws.onmessage = (e) => this._message(ws, e.data);
        ws.onclose = (e) => this._closed(ws, e);
        ws.onerror = () => {}; // onclose follows
    }

    async _closed(ws, e) {
        if (ws && ws !== this.ws) return;
        this.ws = null;
        const hadHello = this.helloAt > 0;
        const upFor = hadHello ? this.o.now() - this.helloAt : 0;
        this.helloAt = 0;
        for (const t of this.ackTimers.values()) clearTimeout(t);
        this.ackTimers.clear();
        clearTimeout(this.previewTimer);
        this.previewQueue = [];
        if (this.stopped) return;
        if (e && e.code === CLOSE_REVOKED) {
            // this page's own password change revokes its old token: go on
            // with the new cookie (renew reconnects); anything else ends it
            const r = this.renewing ? await this.renewing.catch(() => null) : null;
            if (r && r.ok) return;
            this._signOut('revoked');
            return;
        }
        if (!hadHello && (await this._signedOut())) return;
        if (this.stopped) return;
        if (upFor >= HEALTHY_AFTER_MS) this.backoff.reset();
        const delay = this.backoff.next();
        this.dispatch({
            type: 'conn',
            conn: { status: 'offline', code: e && e.code, retryAt: this.o.now() + delay, attempt: this.backoff.attempt },
        });
        this.retryTimer = setTimeout(() => this._connect(), delay);
    }

    // True when the cookie no longer authenticates (the page signs out).
    async _signedOut() {
        try {
            const r = await this.o.fetch('/api/users?q=', { credentials: 'same-origin' });
            if (r.status === 401) {
                this._signOut('expired');
                return true;
            }
        } catch {
            // no answer (offline, gateway down): not a sign-out, keep retrying
        }
        return false;
    }

    _signOut(reason) {
        this.stopped = true;
        clearTimeout(this.retryTimer);
        this.dispatch({ type: 'conn', conn: { status: 'signedOut', retryAt: 0 } });
        if (this.o.onSignedOut) this.o.onSignedOut(reason);
    }

    // Runs this page's password change (a promise of the API's result). The
    // server answers with a fresh cookie and revokes every other token, this
    // page's old one too, closing its socket with 4001: on success the page
    // reconnects at once with the new cookie (sync fills any gap); a 4001
    // that comes meanwhile waits for the outcome instead of signing out.
    async renew(pending) {
        this.renewing = Promise.resolve(pending);
        let r;
        try {
            r = await this.renewing;
        } finally {
            this.renewing = null;
        }
        if (r && r.ok && !this.stopped) this._reconnectNow();
        return r;
    }

    _reconnectNow() {
        clearTimeout(this.retryTimer);
        if (this.ws) {
            const ws = this.ws;
            this.ws = null;
            ws.onclose = ws.onmessage = ws.onerror = null;
            try {
                ws.close(1000, 'new session');
            } catch {
                // already closed
            }
        }
        this.helloAt = 0;
        for (const t of this.ackTimers.values()) clearTimeout(t);
        this.ackTimers.clear();
        this.backoff.reset();
        this._connect();
    }

    _message(ws, data) {
        if (ws !== this.ws) return;
        const f = decodeFrame(data);
        if (!f) return;
        const now = this.o.now();
        if (f.kind === 'hello') {
            this.helloAt = now;
            this.dispatch({ type: 'frame', frame: f, now });
            this.dispatch({ type: 'conn', conn: { status: 'online', since: now, retryAt: 0, code: null } });
            this._afterHello();
            return;
        }
        let mode;
        if (f.kind === 'history' && typeof f.with === 'string') mode = this._takeHistory(f.with);
        if (f.kind === 'group') this._settleGroupOp(f);
        if (f.kind === 'error') mode = this._error(f);
        if (f.kind === 'ack' || (f.kind === 'error' && f.cid)) this._clearAck(f.cid);
        if (f.kind === 'text' && f.cid) this._clearAck(f.cid);
        const before = this.o.getState();
        this.dispatch({ type: 'frame', frame: f, now, mode });
        if (this.o.onFrame) this.o.onFrame(f, before, this.o.getState());
    }

    _afterHello() {
        const s = this.o.getState();
        const sync = syncFrame(s);
        if (sync) this._send(sync);
        for (const o of resendList(s)) this._sendText(o.cid);
        for (const o of resendOps(s)) this._sendOp(o.cid);
        if (this.o.onHello) this.o.onHello(s);
    }

    // An error without cid answers one of our requests: a group change (the
    // oldest waiting), else a typing notice just sent, else a history
    // request (settled so no spinner waits forever). Returns what it
    // answers, for the store: {op, name}, {typing: to}, {quiet} (said
    // already, or nothing to tell), or undefined.
    _error(f) {
        if (f.cid) return undefined;
        if (f.code === 'unknown_kind') {
            // the server does not speak this kind (yet): stop asking
            const m = /\b(history|read|group|block|edit|delete|react)\b/.exec(String(f.message || ''));
            if (m) this.features[m[1]] = false;
            else this.features.history = false;
            if (m && ['edit', 'delete', 'react'].includes(m[1])) {
                this.dispatch({ type: 'notice', text: `This server cannot ${m[1]} messages.`, now: this.o.now() });
                return { quiet: true };
            }
            if (m && m[1] === 'block') {
                // a server before blocking: undo what this page marked, and say so
                if (this.lastBlock) this.dispatch({ type: 'block', user: this.lastBlock.user, on: !this.lastBlock.on });
                this.dispatch({ type: 'notice', text: 'This server cannot block users.', now: this.o.now() });
                return { quiet: true };
            }
        }
        const now = this.o.now();
        this.groupOps = this.groupOps.filter((o) => now - o.at < OP_ANSWER_MS);
        if (this.groupOps.length) {
            const o = this.groupOps.shift();
            return { op: o.op, name: o.name };
        }
        if (f.code === 'forbidden' && this.typingSent && now - this.typingSent.at < TYPING_ERROR_MS) {
            const to = this.typingSent.to;
            this.typingSent = null;
            return { typing: to };
        }
        for (const [key, fifo] of this.history) {
            if (fifo.length) {
                const mode = fifo.shift();
                this.dispatch({ type: 'historyFailed', key, mode });
                break;
            }
        }
        return undefined;
    }

    // A `group` frame answering a group change of ours (this user's own
    // change of that group, the oldest waiting) settles it.
    _settleGroupOp(f) {
        if (f.by !== this.o.getState().me) return;
        const i = this.groupOps.findIndex((o) => o.name === f.name);
        if (i >= 0) this.groupOps.splice(i, 1);
    }

    _takeHistory(key) {
        const fifo = this.history.get(key);
        return fifo && fifo.length ? fifo.shift() : 'initial';
    }

    _send(frame) {
        if (!this.open) return false;
        try {
            this.ws.send(encodeFrame(frame));
            return true;
        } catch {
            return false;
        }
    }

    // ---------------------------------------------------------- actions

    // A new message (replyTo: the id it answers, optional): kept in the
    // outbox (shown as sending) and sent now if connected, else on the next
    // hello. Returns the cid.
    sendText(to, data, replyTo) {
        const cid = newCid(this.o.now());
        this.dispatch({ type: 'send', cid, to, data, now: this.o.now(), replyTo });
        this._sendText(cid);
        return cid;
    }

    // Retry with the same cid (the server answers a known cid with the same
    // id and stores nothing twice); a text or an op alike.
    retry(cid) {
        this.dispatch({ type: 'retry', cid });
        if (this.o.getState().ops[cid]) this._sendOp(cid);
        else this._sendText(cid);
    }

    // Discard a failed text or op. An op may have been stored by the server
    // all the same (its answer late, or lost with a socket): the store keeps
    // it to apply a late ack, and the message is asked for again
    // (`history {before: id + 1, limit: 1}`) so the page shows the server's
    // state of it, not this page's guess.
    discard(cid) {
        const o = this.o.getState().ops[cid];
        this.dispatch({ type: 'discard', cid });
        if (o) this.requestHistory(o.with, 'refresh', o.id + 1);
    }

    // An edit {kind: 'edit', with, id, data}, delete {kind: 'delete', with,
    // id} or reaction {kind: 'react', with, id, emoji, on} of a message:
    // shown at once, sent now if connected (else on the next hello), settled
    // by its ack. Returns the cid.
    sendOp(op) {
        const cid = newCid(this.o.now());
        this.dispatch({ type: 'op', cid, op, now: this.o.now() });
        this._sendOp(cid);
        return cid;
    }

    _sendOp(cid) {
        const o = this.o.getState().ops[cid];
        if (!o) return;
        const frame = { kind: o.kind, with: o.with, id: o.id, cid };
        if (o.kind === 'edit') {
            if (new TextEncoder().encode(o.data).length > MAX_TEXT_BYTES) {
                this.dispatch({ type: 'frame', frame: { kind: 'error', code: 'too_large', message: 'the new text is too long', cid }, now: this.o.now() });
                return;
            }
            frame.data = o.data;
        }
        if (o.kind === 'react') Object.assign(frame, { emoji: o.emoji, on: !!o.on });
        if (!this._send(frame)) return;
        this._armAck(cid);
    }

    _sendText(cid) {
        const o = this.o.getState().outbox[cid];
        if (!o) return;
        if (new TextEncoder().encode(o.data).length > MAX_TEXT_BYTES) {
            // the gateway would close the socket (1009), and so would every resend
            this.dispatch({ type: 'frame', frame: { kind: 'error', code: 'too_large', message: 'message too long', cid }, now: this.o.now() });
            return;
        }
        const frame = { kind: 'text', to: o.to, data: o.data, cid };
        if (o.reply_to) frame.reply_to = o.reply_to;
        if (!this._send(frame)) return;
        this._armAck(cid);
    }

    // Sent once more: no answer within ACK_TIMEOUT_MS makes it failed.
    _armAck(cid) {
        this.dispatch({ type: 'sent', cid });
        this._clearAck(cid);
        this.ackTimers.set(
            cid,
            setTimeout(() => {
                this.ackTimers.delete(cid);
                this.dispatch({ type: 'timeout', cid });
            }, ACK_TIMEOUT_MS),
        );
    }

    _clearAck(cid) {
        const t = this.ackTimers.get(cid);
        if (t) {
            clearTimeout(t);
            this.ackTimers.delete(cid);
        }
    }

    // mode: 'initial' (newest page), 'older' (before the oldest shown),
    // 'preview' (the newest message only, for the conversation list),
    // 'refresh' (the one message before `before`, its current state).
    requestHistory(key, mode = 'initial', before) {
        if (!this.features.history || !this.open) return false;
        const frame = { kind: 'history', with: key, limit: mode === 'preview' || mode === 'refresh' ? 1 : 50 };
        if ((mode === 'older' || mode === 'refresh') && Number.isInteger(before)) frame.before = before;
        if (!this._send(frame)) return false;
        if (!this.history.has(key)) this.history.set(key, []);
        this.history.get(key).push(mode);
        this.dispatch({ type: 'historyRequested', key, mode });
        return true;
    }

    // Queues preview requests (paced) for conversations with no preview yet.
    requestPreviews(keys) {
        for (const k of keys) if (!this.previewQueue.includes(k)) this.previewQueue.push(k);
        this._pumpPreviews();
    }

    _pumpPreviews() {
        if (this.previewTimer || !this.previewQueue.length) return;
        const key = this.previewQueue.shift();
        this.requestHistory(key, 'preview');
        this.previewTimer = setTimeout(() => {
            this.previewTimer = null;
            this._pumpPreviews();
        }, 1000 / this.o.previewRate);
    }

    markRead(frame) {
        if (!frame || !this.features.read) return false;
        return this._send(frame);
    }

    typing(to) {
        const now = this.o.now();
        if (now - (this.lastTyping.get(to) || 0) < TYPING_EVERY_MS) return false;
        // not to a peer who refused this user's last text, nor to one this user blocks
        const s = this.o.getState();
        const c = s.convs[to];
        if ((c && (c.refused || c.removed)) || (s.blocked && s.blocked[to])) return false;
        if (!this._send({ kind: 'typing', to })) return false;
        this.lastTyping.set(to, now);
        this.typingSent = { to, at: now };
        return true;
    }

    stoppedTyping(to) {
        this.lastTyping.delete(to);
    }

    // A group change: op create | join | leave | add | remove | promote |
    // demote; extra: {members, open}. False when not connected.
    group(op, name, extra = {}) {
        if (!this._send({ kind: 'group', op, name, ...extra })) return false;
        this.groupOps.push({ op, name, at: this.o.now() });
        return true;
    }

    // Blocks (on) or unblocks a user: the store changes at once; the
    // server tells this user's other sessions.
    block(user, on) {
        if (!this.features.block || !this._send({ kind: 'block', user, on: !!on })) return false;
        this.lastBlock = { user, on: !!on };
        this.dispatch({ type: 'block', user, on: !!on });
        return true;
    }
}

// A store holder for React (useSyncExternalStore) around the pure reducer.
export function createStore(reducer = reduce, init) {
    let state = init;
    const subs = new Set();
    return {
        getState: () => state,
        dispatch(ev) {
            const next = reducer(state, ev);
            if (next !== state) {
                state = next;
                for (const fn of subs) fn();
            }
        },
        subscribe(fn) {
            subs.add(fn);
            return () => subs.delete(fn);
        },
    };
}
